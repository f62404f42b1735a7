// Upload progress and a "comparing…" state for big files. Without JavaScript the form posts normally.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  // The version a downloaded file's name carries (datasets-v12.csv, "datasets-v12 (1).csv", …),
  // shown in the form so the person can check it; the server reads the name the same way.
  var fileInput = form.querySelector("input[type=file]");
  var base = document.getElementById("base_version");
  if (fileInput && base) {
    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      var found = file && file.name.match(/-v(\d{1,9})(?!\d)/g);
      if (found && (!base.value || base.dataset.fromName === "1")) {
        base.value = found[found.length - 1].slice(2);
        base.dataset.fromName = "1";
      }
    });
    base.addEventListener("input", function () { base.dataset.fromName = ""; });
  }
  if (!window.XMLHttpRequest || !window.FormData) { return; }
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var status = document.getElementById("upload-status");
  form.addEventListener("submit", function (event) {
    if (!form.querySelector("input[type=file]").files.length) { return; }
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    box.hidden = false;
    status.textContent = "Uploading…";
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action") || window.location.pathname);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) { return; }
      var pct = Math.round((e.loaded / e.total) * 100);
      bar.value = pct;
      status.textContent = "Uploading… " + pct + "%";
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value");
      status.textContent = "Comparing with the table… (large files take a few seconds)";
    });
    xhr.addEventListener("load", function () {
      // Show the page the server answered with (review page, or the problems) and its address.
      if (xhr.responseURL && xhr.responseURL !== window.location.href) {
        window.history.replaceState(null, "", xhr.responseURL);
      }
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      status.textContent = "The upload failed (network error). Check your connection and try again.";
    });
    xhr.send(new FormData(form));
  });
})();
