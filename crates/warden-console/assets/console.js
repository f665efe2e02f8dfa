// Warden console: the only script (served from 'self'; the CSP allows no
// inline script). Confirms destructive forms, shows a busy state while a
// form is sent, follows the policy revision, and refreshes the live panel.
"use strict";

document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    ev.preventDefault();
    return;
  }
  var button = form.querySelector("button[type=submit]");
  if (button) {
    button.setAttribute("aria-busy", "true");
    // Disable after the submit has been taken (a disabled button's value
    // would not be sent).
    setTimeout(function () { button.disabled = true; }, 0);
  }
});

(function () {
  var main = document.getElementById("main");
  if (!main || !main.hasAttribute("data-revision")) return;
  var seen = main.getAttribute("data-revision");
  var banner = document.getElementById("revision-banner");
  var live = document.getElementById("live");

  function refreshLive() {
    if (!live) return;
    live.setAttribute("aria-busy", "true");
    fetch(live.getAttribute("data-live-src"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        // Same-origin HTML rendered by the server with every value escaped.
        live.innerHTML = html;
        live.removeAttribute("aria-busy");
      })
      .catch(function (e) {
        live.removeAttribute("aria-busy");
        showBanner("Could not refresh the live panel (" + e.message + ").");
      });
  }

  function showBanner(text, reload) {
    if (!banner) return;
    banner.textContent = text + " ";
    if (reload) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = "Reload";
      b.addEventListener("click", function () { window.location.reload(); });
      banner.appendChild(b);
    }
    banner.hidden = false;
  }

  function poll() {
    fetch("/console/revision", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.redirected) { window.location.assign("/console/login"); throw new Error("signed out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (body) {
        var rev = String(body.revision);
        if (rev !== seen) {
          seen = rev;
          main.setAttribute("data-revision", rev);
          if (live) {
            refreshLive();
          } else {
            showBanner("The policy changed (revision " + rev + ").", true);
          }
        }
      })
      .catch(function () { /* the next poll tries again */ });
  }

  setInterval(poll, 1000);
  if (live) setInterval(refreshLive, 2000);
})();
