/* The demo shop: Segment's analytics.js and RudderStack's JavaScript SDK send page, track
   and identify calls to touchpoints (this server); the offer shows what POST /v1/decide
   answers for the visitor, asked again after each action and every two seconds (so the
   content changes as soon as touchpoints moves the visitor into an audience). */
(function () {
  "use strict";
  var body = document.body;
  var writeKey = body.dataset.writeKey;
  var placement = body.dataset.placement;
  if (!writeKey) {
    return;
  }
  var origin = window.location.origin;
  var visitor = document.getElementById("visitor");
  var consentBox = document.getElementById("consent");
  consentBox.checked = window.localStorage.getItem("demo-consent") === "yes";
  var userId = window.localStorage.getItem("demo-user") || null;

  function consent() {
    return {
      categoryPreferences: { necessary: true, personalisation: consentBox.checked }
    };
  }

  function sent() {
    visitor.dataset.sent = String(Number(visitor.dataset.sent) + 1);
  }

  // Segment: the snippet's queue, then the standalone bundle, with this server as its CDN.
  var analytics = (window.analytics = []);
  ["track", "page", "identify", "reset", "ready", "alias", "group"].forEach(function (name) {
    analytics[name] = function () {
      var args = Array.prototype.slice.call(arguments);
      args.unshift(name);
      analytics.push(args);
      return analytics;
    };
  });
  analytics._writeKey = writeKey;
  analytics._cdn = origin + body.dataset.segmentCdn;
  analytics._loadOptions = {};
  analytics.SNIPPET_VERSION = "5.2.1";
  var script = document.createElement("script");
  script.src = "/static/vendor/segment/analytics-next/standalone.js";
  script.async = true;
  document.head.appendChild(script);

  // RudderStack: the source's configuration from the page, this server as the data plane.
  var rudder = new window.rudderanalytics.RudderAnalytics();
  rudder.load(writeKey, origin, {
    polyfillIfRequired: false,
    loadIntegration: false,
    getSourceConfig: function () {
      return {
        source: {
          id: "touchpoints-demo",
          name: "touchpoints demo shop",
          workspaceId: "touchpoints",
          enabled: true,
          config: {},
          destinations: []
        }
      };
    }
  });

  function segment() {
    return window.analytics;
  }

  function both(call) {
    call(segment(), { context: { consent: consent() } });
    call(rudder, { context: { consent: consent() } });
  }

  function segmentAnonymousId() {
    var found = segment();
    return typeof found.user === "function" ? found.user().anonymousId() : null;
  }

  function show(answer) {
    var content = answer.content || {};
    document.getElementById("offer-headline").textContent = content.headline || "";
    document.getElementById("offer-text").textContent = content.text || "";
    var offer = document.getElementById("offer");
    offer.dataset.rule = answer.rule || "";
    offer.dataset.reason = answer.reason || "";
    document.getElementById("offer-why").textContent =
      (answer.rule ? answer.rule : answer.reason) + " (" + answer.strategy + ")";
  }

  function decide() {
    var anonymousId = segmentAnonymousId();
    if (!anonymousId && !userId) {
      return;
    }
    var question = { placement: placement };
    if (userId) {
      question.userId = userId;
    }
    if (anonymousId) {
      question.anonymousId = anonymousId;
    }
    window
      .fetch("/v1/decide", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: "Basic " + window.btoa(writeKey + ":")
        },
        body: JSON.stringify(question)
      })
      .then(function (answer) {
        return answer.ok ? answer.json() : null;
      })
      .then(function (answer) {
        if (answer) {
          show(answer);
        }
      })
      .catch(function () {});
  }

  function soon() {
    window.setTimeout(decide, 400);
  }

  analytics.ready(function () {
    visitor.dataset.segmentAnonymousId = segmentAnonymousId() || "";
    decide();
  });
  rudder.ready(function () {
    visitor.dataset.rudderstackAnonymousId = rudder.getAnonymousId() || "";
  });
  both(function (sdk, options) {
    sdk.page("Shop", {}, options);
  });
  sent();
  window.setInterval(decide, 2000);

  consentBox.addEventListener("change", function () {
    window.localStorage.setItem("demo-consent", consentBox.checked ? "yes" : "no");
    both(function (sdk, options) {
      sdk.track("Segment Consent Preference Updated", {}, options);
    });
    sent();
    soon();
  });

  document.getElementById("configure").addEventListener("click", function () {
    both(function (sdk, options) {
      sdk.track("Configuration Saved", { model: "Nordwind E5" }, options);
    });
    sent();
    var configured = document.getElementById("configured");
    configured.dataset.count = String(Number(configured.dataset.count) + 1);
    soon();
  });

  function signedIn() {
    if (userId) {
      document.getElementById("signed-in").hidden = false;
      document.getElementById("signed-in-as").textContent = userId;
    }
  }
  signedIn();

  document.getElementById("sign-in").addEventListener("submit", function (event) {
    event.preventDefault();
    userId = document.getElementById("user-id").value.trim();
    var email = document.getElementById("email").value.trim();
    var traits = email ? { email: email } : {};
    window.localStorage.setItem("demo-user", userId);
    both(function (sdk, options) {
      sdk.identify(userId, traits, options);
    });
    sent();
    signedIn();
    soon();
  });
})();
