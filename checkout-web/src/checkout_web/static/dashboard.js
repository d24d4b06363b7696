// The dashboard's only script (CSP script-src 'self'; no inline code): copy buttons. Every page works
// without it; it only saves selecting text by hand.
(function () {
  "use strict";
  function copyFrom(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector(".copy-status");
    if (!source) { return; }
    var text = source.value !== undefined && source.tagName === "INPUT" ? source.value : source.textContent;
    var done = function (ok) {
      if (status) { status.textContent = ok ? "Copied." : "Copy failed: select the text and copy it."; }
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    } else {
      done(false);
    }
  }
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element) {
      var button = target.closest(".copy-button");
      if (button) { copyFrom(button); }
    }
  });
})();
