/*
 * BillingCheckout: shows the hosted payment page in a modal on the tenant's own site.
 *
 *   <script src="https://checkout.example.com/checkout.js"></script>
 *   BillingCheckout.open({url: payment.checkout_url, onClose: function () { ... }});
 *   BillingCheckout.close();
 *
 * The page itself leaves the modal (target=_top) when the payer picks a provider, because providers'
 * pages usually refuse to be framed. Never treat onClose as "paid": confirm with your backend, which
 * learns the outcome from our signed webhooks.
 */
(function (global) {
  "use strict";

  if (global.BillingCheckout) {
    return;
  }

  var doc = global.document;
  var state = null;

  function checkoutUrl(value) {
    var url;
    try {
      url = new URL(String(value), global.location.href);
    } catch (error) {
      return null;
    }
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  }

  function onKeydown(event) {
    if (event.key === "Escape") {
      close();
    }
  }

  function build(url, label) {
    var small = global.matchMedia && global.matchMedia("(max-width: 520px)").matches;

    var overlay = doc.createElement("div");
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-modal", "true");
    overlay.setAttribute("aria-label", label);
    Object.assign(overlay.style, {
      position: "fixed",
      top: "0",
      right: "0",
      bottom: "0",
      left: "0",
      zIndex: "2147483647",
      display: "flex",
      alignItems: "center",
      justifyContent: "center",
      padding: small ? "0" : "24px",
      background: "rgba(17, 24, 39, 0.6)"
    });

    var panel = doc.createElement("div");
    Object.assign(panel.style, {
      position: "relative",
      width: small ? "100%" : "min(480px, 100%)",
      height: small ? "100%" : "min(760px, 100%)",
      overflow: "hidden",
      borderRadius: small ? "0" : "16px",
      background: "#ffffff",
      boxShadow: "0 24px 48px rgba(0, 0, 0, 0.25)"
    });

    var frame = doc.createElement("iframe");
    frame.src = url;
    frame.title = label;
    frame.setAttribute("allow", "payment");
    Object.assign(frame.style, {display: "block", width: "100%", height: "100%", border: "0"});

    var button = doc.createElement("button");
    button.type = "button";
    button.setAttribute("aria-label", "Close checkout");
    button.textContent = "\u00d7";
    Object.assign(button.style, {
      position: "absolute",
      top: "8px",
      right: "8px",
      width: "40px",
      height: "40px",
      border: "0",
      borderRadius: "50%",
      background: "rgba(17, 24, 39, 0.75)",
      color: "#ffffff",
      font: "24px/40px system-ui, sans-serif",
      cursor: "pointer"
    });
    button.addEventListener("click", close);

    panel.appendChild(frame);
    panel.appendChild(button);
    overlay.appendChild(panel);
    return {overlay: overlay, button: button};
  }

  function open(options) {
    var url = options && checkoutUrl(options.url);
    if (!url) {
      throw new TypeError("BillingCheckout.open: options.url must be the payment's http(s) checkout_url");
    }
    close();
    var parts = build(url, options.title || "Secure checkout");
    state = {
      overlay: parts.overlay,
      onClose: typeof options.onClose === "function" ? options.onClose : null,
      previousFocus: doc.activeElement,
      previousOverflow: doc.body.style.overflow
    };
    doc.body.style.overflow = "hidden";
    doc.body.appendChild(parts.overlay);
    doc.addEventListener("keydown", onKeydown);
    parts.button.focus();
  }

  function close() {
    if (!state) {
      return;
    }
    var closing = state;
    state = null;
    doc.removeEventListener("keydown", onKeydown);
    closing.overlay.remove();
    doc.body.style.overflow = closing.previousOverflow;
    if (closing.previousFocus && typeof closing.previousFocus.focus === "function") {
      closing.previousFocus.focus();
    }
    if (closing.onClose) {
      closing.onClose();
    }
  }

  global.BillingCheckout = {open: open, close: close, version: "1"};
})(window);
