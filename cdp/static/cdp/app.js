/* The CDP's own script: toasts, the modal, charts and small htmx glue. Every page works without it; it only
   adds live updates. No inline scripts anywhere (the CSP allows scripts from 'self' only): data comes from
   json_script blocks and data- attributes. */
(function () {
  "use strict";

  var TOAST_SECONDS = 6;
  var LEVELS = ["success", "info", "warning", "error"];

  /* --- Toasts: HX-Trigger {"toast": {"level": "success", "message": "Saved"}} ------------------------------ */

  function showToast(level, message) {
    var box = document.getElementById("toasts");
    var template = document.getElementById("toast-template");
    if (!box || !template || !message) return;
    level = LEVELS.indexOf(level) >= 0 ? level : "info";
    var toast = template.content.firstElementChild.cloneNode(true);
    toast.classList.add("toast-" + level);
    toast.setAttribute("role", level === "error" ? "alert" : "status");
    toast.querySelector(".toast-message").textContent = message;
    var close = function () {
      toast.classList.add("leaving");
      window.setTimeout(function () { toast.remove(); }, 220);
    };
    toast.querySelector(".toast-close").addEventListener("click", close);
    box.appendChild(toast);
    if (level !== "error") window.setTimeout(close, TOAST_SECONDS * 1000);
  }

  document.addEventListener("toast", function (event) {
    var detail = event.detail || {};
    showToast(detail.level, detail.message || detail.value);
  });

  /* A failed htmx request leaves the page as it was (htmx does not swap errors) and says so. */
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var reasons = {403: "You do not have permission to do that.", 404: "That no longer exists.",
                   500: "Something went wrong on the server. Please try again."};
    showToast("error", reasons[xhr.status] || "The request failed (" + xhr.status + ").");
  });
  document.addEventListener("htmx:sendError", function () {
    showToast("error", "The server cannot be reached. Check your connection.");
  });

  /* A session that expired answers a poll with the login page: load it as a page, not into a card. */
  document.addEventListener("htmx:beforeSwap", function (event) {
    var login = document.body.dataset.loginUrl;
    var url = event.detail.xhr && event.detail.xhr.responseURL;
    if (login && url && new URL(url, window.location.href).pathname === login) {
      event.detail.shouldSwap = false;
      window.location.href = login + "?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    }
  });

  /* Polling ([data-poll-visible]) pauses while the tab is hidden. */
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute && elt.hasAttribute("data-poll-visible")) {
      event.preventDefault();
    }
  });

  /* --- Modal: content loaded into #modal-body opens the dialog; HX-Trigger "modal:close" closes it --------- */

  function modal() { return document.getElementById("modal"); }

  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = modal();
    if (dialog && event.detail.target && event.detail.target.id === "modal-body" && !dialog.open) {
      var title = event.detail.target.querySelector("[data-modal-title]");
      var heading = dialog.querySelector(".modal-title");
      if (heading) heading.textContent = title ? title.textContent : "";
      dialog.showModal();
    }
  });
  document.addEventListener("modal:close", function () {
    var dialog = modal();
    if (dialog && dialog.open) dialog.close();
  });
  document.addEventListener("close", function (event) {
    if (event.target === modal()) {
      var body = document.getElementById("modal-body");
      if (body) body.replaceChildren();
    }
  }, true);

  /* --- Charts: <canvas data-chart="line" data-chart-data="id-of-json-script" data-chart-lib="…/chart.js"> --- */

  var chartLibrary = null;

  function loadChartLibrary(src) {
    if (window.Chart) return Promise.resolve(window.Chart);
    if (!chartLibrary) {
      chartLibrary = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = src;
        script.onload = function () { resolve(window.Chart); };
        script.onerror = function () { chartLibrary = null; reject(new Error("Chart.js did not load")); };
        document.head.appendChild(script);
      });
    }
    return chartLibrary;
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function shortDate(iso) {
    var parts = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
    if (!parts) return iso;
    var date = new Date(Date.UTC(+parts[1], +parts[2] - 1, +parts[3]));
    return date.toLocaleDateString(undefined, {month: "short", day: "numeric", timeZone: "UTC"});
  }

  function drawChart(canvas, Chart) {
    var source = document.getElementById(canvas.dataset.chartData);
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var palette = [cssVar("--chart-1", "#3b5bdb"), cssVar("--chart-2", "#0c8599"),
                   cssVar("--chart-3", "#e8590c"), cssVar("--chart-4", "#7048e8")];
    var kind = canvas.dataset.chart === "bar" ? "bar" : "line";
    var datasets = (data.series || []).map(function (series, index) {
      var color = palette[index % palette.length];
      return {
        label: series.label, data: series.values, borderColor: color, backgroundColor: color + "22",
        fill: kind === "line", tension: 0.3, pointRadius: 0, pointHoverRadius: 4, borderWidth: 2,
        borderRadius: kind === "bar" ? 4 : 0, maxBarThickness: 28
      };
    });
    if (canvas._chart) canvas._chart.destroy();
    var grid = cssVar("--chart-grid", "#e9ecf1");
    var text = cssVar("--muted", "#6b7385");
    var reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    canvas._chart = new Chart(canvas, {
      type: kind,
      data: {labels: (data.labels || []).map(shortDate), datasets: datasets},
      options: {
        responsive: true, maintainAspectRatio: false, animation: reduced ? false : {duration: 400},
        interaction: {mode: "index", intersect: false},
        plugins: {legend: {display: datasets.length > 1, labels: {color: text, boxWidth: 12}}},
        scales: {
          x: {grid: {display: false}, ticks: {color: text, maxRotation: 0, autoSkipPadding: 16}},
          y: {beginAtZero: true, grid: {color: grid}, border: {display: false},
              ticks: {color: text, precision: 0}}
        }
      }
    });
    if (!canvas.hasAttribute("data-chart-drawn")) {
      /* The numbers are open for readers without JavaScript; with the chart drawn they fold away. */
      var figure = canvas.closest("figure");
      var numbers = figure && figure.querySelector("details.chart-fallback");
      if (numbers) numbers.open = false;
    }
    canvas.setAttribute("data-chart-drawn", "true");
  }

  function initCharts(root) {
    if (!root || !root.querySelectorAll) return;
    var canvases = root.matches && root.matches("canvas[data-chart]") ? [root] : root.querySelectorAll("canvas[data-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      loadChartLibrary(canvas.dataset.chartLib).then(function (Chart) {
        drawChart(canvas, Chart);
      }).catch(function () {
        var frame = canvas.closest(".chart-frame");
        if (frame) frame.classList.add("no-js-hidden");  /* the table of numbers stays open */
      });
    });
  }

  /* --- Start: htmx.onLoad runs for the page and for every piece htmx swaps in ----------------------------- */

  function start() {
    document.documentElement.classList.add("js");
    initCharts(document);
    if (window.htmx) {
      window.htmx.onLoad(function (elt) {
        if (elt !== document.body) initCharts(elt);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
