// Keyboard shortcuts of the analyst console (no inline script: the CSP allows only this file).
(function () {
  "use strict";
  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA");
  }
  function rows() { return Array.from(document.querySelectorAll("#queue tbody tr")); }
  var selected = -1;
  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    all[selected].scrollIntoView({block: "nearest"});
  }
  document.addEventListener("keydown", function (event) {
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "j") { select(selected + 1); return; }
    if (key === "k") { select(selected - 1); return; }
    if (key === "Enter" && selected >= 0) {
      window.location.href = rows()[selected].dataset.href; return;
    }
    if (key === "q") { window.location.href = "/"; return; }
    var button = document.querySelector('button[data-key="' + key + '"]');
    if (button) { event.preventDefault(); button.click(); }
  });
})();
