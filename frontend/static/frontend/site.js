// Partnership CRM: the little behaviour htmx does not give us. Every page works without it.
(function () {
  "use strict";

  function say(text) {
    var flash = document.getElementById("flash");
    if (!flash) return;
    flash.innerHTML = "";
    var p = document.createElement("p");
    p.className = "messages";
    p.innerHTML = '<span class="error"></span>';
    p.firstChild.textContent = text;
    flash.appendChild(p);
  }

  // A refused action (403), something gone (404) or a server fault: say so, don't fail silently.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var text = {
      403: "You may not do that.",
      404: "That is no longer there.",
    }[status] || "Something went wrong (" + status + "). Please try again.";
    say(text);
  });
  document.addEventListener("htmx:sendError", function () {
    say("Could not reach the server. Check your connection and try again.");
  });

  // After a panel is swapped in, move focus to its heading so keyboard and screen-reader
  // users land on what they asked for.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.hasAttribute("data-focus-on-swap")) return;
    var heading = target.querySelector("[data-focus-here]");
    if (heading) heading.focus();
  });
})();
