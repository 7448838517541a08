// Draw every chart on the page from its ECharts option (data-option), and keep them sized.
(function () {
  function draw(root) {
    root.querySelectorAll(".chart[data-option]").forEach(function (el) {
      if (echarts.getInstanceByDom(el)) return;
      var chart = echarts.init(el, null, { renderer: "canvas" });
      // Marked once drawn to the end (animations included): what tests and screenshots wait for.
      chart.on("finished", function () { el.dataset.drawn = "true"; });
      chart.setOption(JSON.parse(el.dataset.option));
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
  window.addEventListener("resize", function () {
    document.querySelectorAll(".chart[data-option]").forEach(function (el) {
      var chart = echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
})();
