// Background exports: POST /api/v1/exports/, then poll the job until its file is ready.
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function filtersOf(form) {
    var filters = {};
    new FormData(form).forEach(function (value, name) {
      if (value !== "") { filters[name] = value; }
    });
    return filters;
  }

  function show(box, progress, text) {
    box.hidden = false;
    box.querySelector("progress").value = progress;
    box.querySelector(".export-text").textContent = text;
  }

  function poll(url, box, buttons) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("The export could not be read (" + response.status + ")."); }
        return response.json();
      })
      .then(function (job) {
        var progress = job.progress || 0;
        if (job.status === "done") {
          show(box, 100, "Ready: " + (job.rows || 0) + (job.rows === 1 ? " row." : " rows."));
          var link = box.querySelector(".export-download");
          link.href = job.download_url;
          link.hidden = false;
          buttons.forEach(function (b) { b.disabled = false; });
        } else if (job.status === "failed") {
          show(box, progress, "The export failed" + (job.error ? ": " + job.error : "."));
          buttons.forEach(function (b) { b.disabled = false; });
        } else {
          show(box, progress, (job.status === "pending" ? "Waiting to start" : "Writing") + ": " + progress + "%");
          window.setTimeout(function () { poll(url, box, buttons); }, 1000);
        }
      })
      .catch(function (error) {
        show(box, 0, error.message);
        buttons.forEach(function (b) { b.disabled = false; });
      });
  }

  document.querySelectorAll(".report-form").forEach(function (form) {
    var box = form.querySelector(".export-status");
    var buttons = Array.prototype.slice.call(form.querySelectorAll(".js-background"));
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        buttons.forEach(function (b) { b.disabled = true; });
        box.querySelector(".export-download").hidden = true;
        show(box, 0, "Starting the export…");
        fetch("/api/v1/exports/", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify({ report: form.dataset.report, format: button.dataset.format, filters: filtersOf(form) })
        })
          .then(function (response) {
            return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
          })
          .then(function (result) {
            if (!result.ok) {
              var detail = result.body.detail || JSON.stringify(result.body);
              throw new Error("The export was refused: " + detail);
            }
            poll("/api/v1/exports/" + result.body.id + "/", box, buttons);
          })
          .catch(function (error) {
            show(box, 0, error.message);
            buttons.forEach(function (b) { b.disabled = false; });
          });
      });
    });
  });
})();
