/*
 * BillingCheckout: shows the hosted payment page in a modal on the tenant's own site.
 *
 *   <script src="https://checkout.example.com/checkout.js"></script>
 *   BillingCheckout.open({
 *     token: payment.checkout_token,                 // from your backend (POST /v1/payments)
 *     onSuccess: function (result) { ... },          // {status: "SUCCEEDED" | "AUTHORIZED"}
 *     onFailure: function (result) { ... },          // {status: "FAILED" | "EXPIRED" | "CANCELLED", failure_message}
 *     onClose: function () { ... }                   // the payer closed the modal
 *   });
 *   BillingCheckout.close();
 *
 * The modal shows /c/{token}?embedded=true&origin=<this page's origin> from the origin this script
 * was loaded from (or options.checkoutUrl). The page opens the provider's page in a new window and
 * tells us the status the platform holds, which only a verified provider callback makes SUCCEEDED:
 * a message counts only if it comes from that origin and from our iframe's window. Your site's
 * origin must be one of the tenant's allowed_origins, or the page refuses to be framed.
 *
 * The older form, BillingCheckout.open({url: payment.checkout_url, onClose}), still shows the page
 * as it always did (the payer leaves the modal for the provider's page).
 *
 * Callbacks are for the payer's experience. Fulfil orders on the signed payment.succeeded webhook or
 * GET /v1/payments/{id} from your backend, never on a callback in the browser alone.
 */
(function (global) {
  "use strict";

  if (global.BillingCheckout) {
    return;
  }

  var doc = global.document;
  var PREFIX = "billing-checkout:v1:";
  var SUCCESS = ["SUCCEEDED", "AUTHORIZED"];
  var FAILURE = ["FAILED", "EXPIRED", "CANCELLED"];
  var TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
  // Read now: document.currentScript is set only while this file runs.
  var scriptBase = baseOf(doc.currentScript && doc.currentScript.src);
  var state = null;

  function httpUrl(value, base) {
    var url;
    try {
      url = new URL(String(value), base || global.location.href);
    } catch (error) {
      return null;
    }
    return url.protocol === "https:" || url.protocol === "http:" ? url : null;
  }

  function baseOf(scriptSrc) {
    var url = scriptSrc ? httpUrl(scriptSrc) : null;
    return url ? new URL(".", url) : null;
  }

  function target(options) {
    if (options.token !== undefined) {
      if (typeof options.token !== "string" || !TOKEN.test(options.token)) {
        throw new TypeError("BillingCheckout.open: options.token must be the payment's checkout_token");
      }
      var base = options.checkoutUrl ? httpUrl(options.checkoutUrl) : scriptBase;
      if (!base) {
        throw new TypeError("BillingCheckout.open: load checkout.js from the checkout server or pass options.checkoutUrl");
      }
      if (!/\/$/.test(base.pathname)) {
        base = new URL(base.pathname + "/", base);
      }
      var src = new URL("c/" + encodeURIComponent(options.token), base);
      src.searchParams.set("embedded", "true");
      src.searchParams.set("origin", global.location.origin);
      return {src: src.href, origin: src.origin};
    }
    var url = httpUrl(options.url);
    if (!url) {
      throw new TypeError("BillingCheckout.open: pass options.token, or options.url as the payment's http(s) checkout_url");
    }
    return {src: url.href, origin: url.origin};
  }

  function callback(value) {
    return typeof value === "function" ? value : null;
  }

  function focusGuard(onFocus) {
    // Not aria-hidden: a focusable element hidden from assistive technology is an accessibility error.
    var guard = doc.createElement("div");
    guard.tabIndex = 0;
    guard.addEventListener("focus", onFocus);
    return guard;
  }

  function build(src, label) {
    var small = global.matchMedia && global.matchMedia("(max-width: 520px)").matches;

    var overlay = doc.createElement("div");
    overlay.setAttribute("data-test-id", "payment-modal");
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
      display: "flex",
      flexDirection: "column",
      width: small ? "100%" : "min(480px, 100%)",
      height: small ? "100%" : "min(760px, 100%)",
      overflow: "hidden",
      borderRadius: small ? "0" : "16px",
      background: "#ffffff",
      boxShadow: "0 24px 48px rgba(0, 0, 0, 0.25)"
    });

    var frame = doc.createElement("iframe");
    frame.setAttribute("data-test-id", "payment-iframe");
    frame.src = src;
    frame.title = label;
    frame.setAttribute("allow", "payment");
    Object.assign(frame.style, {display: "block", flex: "1 1 auto", width: "100%", minHeight: "0", border: "0"});

    // The close button sits in a bar of its own, so it never covers the page's content.
    var bar = doc.createElement("div");
    Object.assign(bar.style, {
      display: "flex",
      justifyContent: "flex-end",
      flex: "0 0 auto",
      padding: "4px",
      borderBottom: "1px solid #e5e7eb"
    });

    var button = doc.createElement("button");
    button.type = "button";
    button.setAttribute("data-test-id", "close-modal-button");
    button.setAttribute("aria-label", "Close checkout");
    button.textContent = "\u00d7";
    Object.assign(button.style, {
      width: "40px",
      height: "40px",
      border: "0",
      borderRadius: "50%",
      background: "#374151",
      color: "#ffffff",
      padding: "0",
      font: "24px/40px system-ui, sans-serif",
      textAlign: "center",
      cursor: "pointer"
    });
    button.addEventListener("click", close);

    // Focus stays in the modal: tabbing past either end wraps to the other (the frame's own content
    // is tabbed through by the browser between the two).
    overlay.appendChild(focusGuard(function () { frame.focus(); }));
    bar.appendChild(button);
    panel.appendChild(bar);
    panel.appendChild(frame);
    overlay.appendChild(panel);
    overlay.appendChild(focusGuard(function () { button.focus(); }));
    return {overlay: overlay, frame: frame, button: button};
  }

  function onKeydown(event) {
    if (event.key === "Escape") {
      close();
    }
  }

  function onFocusin(event) {
    if (state && !state.overlay.contains(event.target)) {
      state.button.focus();
    }
  }

  function settle(kind, result) {
    if (!state || state.settled) {
      return;
    }
    state.settled = true;
    var handler = kind === "success" ? state.onSuccess : state.onFailure;
    if (handler) {
      handler(result);
    }
  }

  function onMessage(event) {
    // Exactly the checkout's origin, and exactly our iframe: any other window may post anything.
    if (!state || event.origin !== state.origin || event.source !== state.frame.contentWindow) {
      return;
    }
    var data = event.data;
    if (!data || typeof data !== "object" || typeof data.type !== "string") {
      return;
    }
    if (data.type === PREFIX + "close") {
      close();
    } else if (data.type === PREFIX + "status" && typeof data.status === "string") {
      if (SUCCESS.indexOf(data.status) >= 0) {
        settle("success", {status: data.status});
      } else if (FAILURE.indexOf(data.status) >= 0) {
        var message = typeof data.failure_message === "string" ? data.failure_message : null;
        settle("failure", {status: data.status, failure_message: message});
      }
    }
  }

  function open(options) {
    options = options || {};
    var where = target(options);
    close();
    var parts = build(where.src, options.title || "Secure checkout");
    state = {
      overlay: parts.overlay,
      frame: parts.frame,
      button: parts.button,
      origin: where.origin,
      settled: false,
      onSuccess: callback(options.onSuccess),
      onFailure: callback(options.onFailure),
      onClose: callback(options.onClose),
      previousFocus: doc.activeElement,
      previousOverflow: doc.body.style.overflow
    };
    doc.body.style.overflow = "hidden";
    doc.body.appendChild(parts.overlay);
    doc.addEventListener("keydown", onKeydown);
    doc.addEventListener("focusin", onFocusin);
    global.addEventListener("message", onMessage);
    parts.button.focus();
  }

  function close() {
    if (!state) {
      return;
    }
    var closing = state;
    state = null;
    doc.removeEventListener("keydown", onKeydown);
    doc.removeEventListener("focusin", onFocusin);
    global.removeEventListener("message", onMessage);
    closing.overlay.remove();
    doc.body.style.overflow = closing.previousOverflow;
    if (closing.previousFocus && typeof closing.previousFocus.focus === "function") {
      closing.previousFocus.focus();
    }
    if (closing.onClose) {
      closing.onClose();
    }
  }

  global.BillingCheckout = {open: open, close: close, version: "2"};
})(window);
