// Language switch, period picker and sortable tables; no libraries, nothing fetched.
(function () {
  "use strict";
  var root = document.documentElement;
  function setLang(lang) {
    root.classList.remove("lang-en", "lang-zh");
    root.classList.add("lang-" + lang);
    root.setAttribute("lang", lang === "zh" ? "zh-CN" : "en");
    var field = document.getElementById("lang-field");
    if (field) { field.value = lang; }
    try { window.localStorage.setItem("leadcast-lang", lang); } catch (e) { /* private mode */ }
  }
  var params = new URLSearchParams(window.location.search);
  var saved = null;
  try { saved = window.localStorage.getItem("leadcast-lang"); } catch (e) { saved = null; }
  if (!params.get("lang") && (saved === "en" || saved === "zh")) { setLang(saved); }
  var button = document.getElementById("lang-switch");
  if (button) {
    button.addEventListener("click", function () {
      setLang(root.classList.contains("lang-zh") ? "en" : "zh");
    });
  }
  var choice = document.getElementById("period-choice");
  var custom = document.querySelector(".custom-dates");
  function showCustom() {
    if (choice && custom) { custom.style.display = choice.value === "custom" ? "" : "none"; }
  }
  if (choice) { choice.addEventListener("change", showCustom); showCustom(); }
  function cellValue(row, index) {
    var cell = row.children[index];
    if (!cell) { return ""; }
    var v = cell.getAttribute("data-v");
    if (v !== null && v !== "" && !isNaN(Number(v))) { return Number(v); }
    return cell.textContent.trim().toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, index) {
      th.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index), y = cellValue(b, index);
          var order = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? order : -order;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
}());
