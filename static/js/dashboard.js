// Draws every Plotly figure whose JSON sits in a <script type="application/json"> next to
// its div (data-figure="<script id>"), on load and after each htmx swap or history restore.
(function () {
  "use strict";
  function draw(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-figure]").forEach(function (div) {
      var src = document.getElementById(div.dataset.figure);
      if (!src) return;
      var fig = JSON.parse(src.textContent);
      if (!div._fullLayout) div.innerHTML = "";
      window.Plotly.react(div, fig.data || [], fig.layout || {}, { responsive: true, displaylogo: false });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.detail && e.detail.elt ? e.detail.elt : document); });
  document.addEventListener("htmx:historyRestore", function () { draw(document); });
  // Picking a custom date switches the range to "custom" before htmx sends the form.
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.matches && t.matches(".filters input[type=datetime-local]")) {
      var range = t.form && t.form.querySelector("[name=range]");
      if (range) range.value = "custom";
    }
  }, true);
})();
