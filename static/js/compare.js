// Compare page helpers: add assertion rows; show the judge-model picker only for judge rows.
(function () {
  "use strict";
  function syncRow(row) {
    var kind = row.querySelector('select[name="assertion_kind"]');
    var judge = row.querySelector("[data-judge-model]");
    if (kind && judge) judge.hidden = kind.value !== "judge";
  }
  function init(root) {
    (root || document).querySelectorAll("[data-assertion]").forEach(syncRow);
  }
  document.addEventListener("change", function (event) {
    var row = event.target.closest && event.target.closest("[data-assertion]");
    if (row) syncRow(row);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-add-assertion]");
    if (!button) return;
    var rows = document.querySelectorAll("#cmp-assertions [data-assertion]");
    if (!rows.length || rows.length >= 10) return;
    var copy = rows[rows.length - 1].cloneNode(true);
    copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    copy.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
    rows[rows.length - 1].after(copy);
    syncRow(copy);
  });
  // Our forms answer bad input with 400 and a fragment saying what to fix: show it
  // (htmx does not swap 4xx responses by default).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var elt = event.detail.elt;
    var ours = elt && elt.closest && elt.closest("#cmp-form, #drill-form, .cmp-vote");
    if (ours && event.detail.xhr && event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();
