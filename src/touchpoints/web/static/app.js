// The dashboard's script (no inline scripts: the pages pass what it needs in data- attributes).
// Draws every chart from its ECharts option (data-option) with numbers written the way the
// page's language writes them (<html lang>: 1,234.5 or 1.234,5), keeps the charts sized, and
// wires the few controls that need a script (add a funnel step, copy, confirm a revocation).
(function () {
  var numbers = new Intl.NumberFormat(document.documentElement.lang || "en", {
    maximumFractionDigits: 2,
  });
  function number(value) {
    return typeof value === "number" ? numbers.format(value) : value;
  }

  // Tooltips, value axes, heat map cells and colour scales in the page's language; the
  // categories (names, days) are written by the server already.
  function localise(option) {
    if (option.tooltip && !option.tooltip.formatter && !option.tooltip.valueFormatter) {
      option.tooltip.valueFormatter = number;
    }
    ["xAxis", "yAxis"].forEach(function (key) {
      [].concat(option[key] || []).forEach(function (axis) {
        if (axis.type === "value") {
          axis.axisLabel = Object.assign({}, axis.axisLabel, { formatter: number });
        }
      });
    });
    (option.series || []).forEach(function (series) {
      if (series.type === "heatmap" && series.label) {
        series.label.formatter = function (params) { return number(params.value[2]); };
      }
    });
    if (option.visualMap && !option.visualMap.formatter) option.visualMap.formatter = number;
    return option;
  }

  function draw(root) {
    root.querySelectorAll(".chart[data-option]").forEach(function (el) {
      if (echarts.getInstanceByDom(el)) return;
      // The height comes as data-height: the pages have no style attributes (the CSP allows
      // no inline styles), and a style set from a script is allowed.
      if (el.dataset.height) el.style.height = el.dataset.height + "px";
      var chart = echarts.init(el, null, { renderer: "canvas" });
      // Marked once drawn to the end (animations included): what tests and screenshots wait for.
      chart.on("finished", function () { el.dataset.drawn = "true"; });
      chart.setOption(localise(JSON.parse(el.dataset.option)));
    });
  }

  // Funnels: another step, a copy of the last input, empty (up to the funnel's limit).
  function addStep() {
    var list = document.getElementById("steps");
    if (list.children.length >= Number(list.dataset.max)) return;
    var item = list.lastElementChild.cloneNode(true);
    var input = item.querySelector("input");
    input.value = "";
    input.setAttribute("aria-label", list.dataset.stepLabel.replace("{n}", list.children.length + 1));
    list.appendChild(item);
    input.focus();
  }

  // Copy puts a secret or snippet on the clipboard (or selects it, where there is no clipboard).
  function copy(button) {
    var source = document.querySelector(button.dataset.copy);
    var done = function () { button.textContent = button.dataset.copied; };
    var select = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      button.textContent = button.dataset.selected;
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(done, select);
    } else {
      select();
    }
  }

  // The audience builder: a condition's snippet put in the definition where the cursor is,
  // indented as the line it lands on.
  function insertSnippet(button) {
    var area = document.getElementById(button.dataset.target);
    if (!area) return;
    var at = area.selectionStart || 0;
    var lineStart = area.value.lastIndexOf("\n", at - 1) + 1;
    var indent = area.value.slice(lineStart, at).match(/^\s*/)[0];
    var text = button.dataset.snippet.replace(/\n(?=.)/g, "\n" + indent);
    area.value = area.value.slice(0, at) + text + area.value.slice(area.selectionEnd || at);
    area.focus();
    area.selectionStart = area.selectionEnd = at + text.length;
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
    document.querySelectorAll("button.snippet[data-snippet]").forEach(function (button) {
      button.addEventListener("click", function () { insertSnippet(button); });
    });
    var add = document.getElementById("add-step");
    if (add) add.addEventListener("click", addStep);
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () { copy(button); });
    });
    // A form that asks first (revoking a key): its question is in data-confirm.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    // A page that answers a form post: reloading it shows the page, not the form again.
    var replace = document.querySelector("[data-replace-url]");
    if (replace && window.history.replaceState) {
      window.history.replaceState(null, "", replace.dataset.replaceUrl);
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
  window.addEventListener("resize", function () {
    document.querySelectorAll(".chart[data-option]").forEach(function (el) {
      var chart = echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
})();
