// A workbook is built before its first byte is sent (seconds for a large table): say so at once.
(function () {
  "use strict";
  document.querySelectorAll("[data-preparing] a[href*='download.xlsx']").forEach(function (link) {
    link.addEventListener("click", function () {
      var box = link.closest("[data-preparing]");
      var text = /whole database/.test(link.textContent) && !/every table/.test(box.getAttribute("data-preparing"))
        ? "Preparing the workbook of every table…"
        : box.getAttribute("data-preparing");
      var status = document.getElementById("download-status");
      if (!status) {
        status = document.createElement("p");
        status.id = "download-status";
        status.className = "hint download-status";
        status.setAttribute("role", "status");
        box.insertAdjacentElement("afterend", status);
      }
      status.textContent = text + " The download starts when it is ready.";
      window.setTimeout(function () { status.textContent = ""; }, 60000);
    });
  });
})();
