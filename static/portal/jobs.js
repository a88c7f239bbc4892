// A background job's page: follow its progress, then show its report (the page again).
(function () {
  "use strict";
  var box = document.querySelector(".job-status");
  if (!box) { return; }

  function poll() {
    fetch(box.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("The job could not be read (" + response.status + ")."); }
        return response.json();
      })
      .then(function (job) {
        box.querySelector("progress").value = job.progress || 0;
        if (job.status === "done" || job.status === "failed") {
          window.location.reload();
          return;
        }
        box.querySelector(".job-text").textContent =
          (job.status === "pending" ? "Waiting for a worker" : "Reading and checking the files") + ": " +
          (job.progress || 0) + "%";
        window.setTimeout(poll, 1000);
      })
      .catch(function (error) {
        box.querySelector(".job-text").textContent = error.message + " Reload the page to try again.";
      });
  }

  window.setTimeout(poll, 500);
})();
