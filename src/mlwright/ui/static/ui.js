/* mlwright dashboard: draw the Plotly figures a panel fragment carries.
   Each panel (htmx swaps it in) holds <div class="mw-figs" hidden> (JSON text)
   {"name": {data, layout}} and <div class="mw-chart" data-fig="name"> placeholders.
   When a panel's charts are drawn it gets data-mw-state="done" (tests and the benchmark
   wait for it; data-mw-arrived-ms and data-mw-done-ms: when its fragment arrived and when
   its charts were drawn, from the navigation's start), or "failed" with the error on the
   console. */
(function () {
  "use strict";
  // No mode bar (one toolbar less to build per chart): zoom by dragging, double-click to
  // reset.
  var config = {displaylogo: false, responsive: true, displayModeBar: false};

  function drawPanel(panel) {
    panel.setAttribute("data-mw-arrived-ms", String(Math.round(performance.now())));
    var block = panel.querySelector(".mw-figs");
    if (!block) { panel.setAttribute("data-mw-state", "done"); return; }
    var figures = JSON.parse(block.textContent || "{}");
    var pending = [];
    panel.querySelectorAll(".mw-chart[data-fig]").forEach(function (el) {
      var fig = figures[el.getAttribute("data-fig")];
      if (!fig) { return; }
      pending.push(window.Plotly.newPlot(el, fig.data, fig.layout || {}, config));
    });
    panel.setAttribute("data-mw-state", "drawing");
    Promise.all(pending).then(function () {
      panel.setAttribute("data-mw-done-ms", String(Math.round(performance.now())));
      panel.setAttribute("data-mw-state", "done");
      panel.setAttribute("data-mw-charts", String(pending.length));
    }, function (err) {
      panel.setAttribute("data-mw-state", "failed");
      console.error("mlwright: a chart failed to draw:", err);
    });
  }

  function whenPlotly(fn) {
    if (window.Plotly || !document.querySelector("script[src$='plotly.min.js']")) { fn(); return; }
    window.addEventListener("load", fn, {once: true});
  }

  document.addEventListener("htmx:afterSettle", function (evt) {
    var target = evt.detail.target;
    var panel = target && target.closest ? target.closest(".mw-panel") : null;
    if (panel) { whenPlotly(function () { drawPanel(panel); }); }
  });
  document.addEventListener("htmx:responseError", function (evt) {
    var target = evt.detail.target;
    var xhr = evt.detail.xhr;
    var text = "";
    try { text = JSON.parse(xhr.responseText).detail; } catch (e) { text = xhr.statusText; }
    var box = document.getElementById("action-result");
    var where = (box && evt.detail.elt && evt.detail.elt.closest && evt.detail.elt.closest("#actions")) ? box : target;
    if (where) {
      where.innerHTML = "";
      var p = document.createElement("p");
      p.className = "mw-error";
      p.setAttribute("role", "alert");
      p.setAttribute("data-status", String(xhr.status));
      p.textContent = xhr.status + ": " + text;
      where.appendChild(p);
    }
  });
})();
