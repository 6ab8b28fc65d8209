// runstack dashboard: small progressive enhancements; every page works without this file.
"use strict";
(function () {
  // Step panels open in place (the links also work as plain links).
  function openStep(link, push) {
    var run = document.getElementById("run");
    var panel = document.getElementById("panel");
    if (!run || !panel) return false;
    var url = link.getAttribute("href").split("#")[0];
    fetch(url + "/panel", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        panel.innerHTML = html;
        document.querySelectorAll("#steps tr").forEach(function (tr) { tr.classList.remove("selected"); });
        var row = link.closest("tr"); if (row) row.classList.add("selected");
        if (push) history.pushState({ step: url }, "", url);
      })
      .catch(function () { window.location = link.href; });
    return true;
  }
  document.addEventListener("click", function (e) {
    if (!e.target.closest || e.ctrlKey || e.metaKey || e.shiftKey) return;
    var link = e.target.closest("a.step-link");
    var node = link ? null : e.target.closest("#graph g.step, #timeline g.step, #timeline [data-step]");
    if (node) {  // a step in the run graph or timeline: the same as its row's link
      link = Array.prototype.find.call(document.querySelectorAll("a.step-link"), function (a) {
        return a.dataset.step === node.getAttribute("data-step");
      });
    }
    if (link && openStep(link, true)) e.preventDefault();
  });
  window.addEventListener("popstate", function () { window.location.reload(); });

  // A running run refreshes itself until it ends: poll its JSON, reload when it changes.
  var run = document.getElementById("run");
  if (run && run.dataset.status === "running") {
    var api = "/api/runs/" + encodeURIComponent(run.dataset.run);
    var last = null;
    var poll = function () {
      fetch(api, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (text) {
        if (last !== null && text !== last) { window.location.reload(); return; }
        last = text;
        setTimeout(poll, 2000);
      }).catch(function () { setTimeout(poll, 5000); });
    };
    poll();
  }

  // The compare button says how many runs are ticked.
  var form = document.getElementById("compare-form");
  if (form) {
    var count = function () {
      var n = form.querySelectorAll("input[name=run]:checked").length;
      document.getElementById("ticked").textContent = n ? n + " ticked" : "tick two or more runs";
      document.getElementById("compare-button").disabled = n < 2;
    };
    form.addEventListener("change", count);
    count();
  }
})();
