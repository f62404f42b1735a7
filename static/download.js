// A workbook is built before its first byte is sent (seconds for a large table): say so at once.
(function () {
  "use strict";
  document.querySelectorAll("a[data-preparing]").forEach(function (link) {
    link.addEventListener("click", function () {
      var status = document.getElementById("download-status");
      if (!status) {
        status = document.createElement("p");
        status.id = "download-status";
        status.className = "hint download-status";
        status.setAttribute("role", "status");
        link.parentNode.insertAdjacentElement("afterend", status);
      }
      status.textContent = link.getAttribute("data-preparing") + " The download starts when it is ready.";
      // the page stays: the file arrives as a download; clear the message after a while
      window.setTimeout(function () { status.textContent = ""; }, 60000);
    });
  });
})();
