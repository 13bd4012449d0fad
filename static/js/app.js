/* Small behaviours shared by the app's and the sandbox's pages (no framework). */
(function () {
  "use strict";
  // <form data-confirm="Buy…?">: ask before a purchase, a delete, a cancellation.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);
  // <button data-copy="…">: copy a long id; the button says so for a moment.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var text = button.getAttribute("data-copy");
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "absolute";
      area.style.left = "-9999px";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (error) { /* nothing to do */ }
      document.body.removeChild(area);
    }
  });
  // <div id="…" data-live>: kept up to date from the page's own URL while the page is open
  // (the sandbox's delivery tables): every 2 s while it shows an unfinished row
  // ([data-unfinished]), else every 10 s. Replaced only when its text changed.
  function follow(element) {
    var delay = element.querySelector("[data-unfinished]") ? 2000 : 10000;
    window.setTimeout(function () {
      if (document.hidden) { follow(element); return; }
      fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          var fresh = html && new DOMParser().parseFromString(html, "text/html").getElementById(element.id);
          if (fresh && fresh.textContent !== element.textContent) {
            element.replaceWith(fresh);
            element = fresh;
          }
          follow(element);
        })
        .catch(function () { follow(element); });
    }, delay);
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-live][id]"), follow);
})();
