/*
 * The hosted checkout inside BillingCheckout's modal (/c/{token}?embedded=true&origin=...).
 *
 * The provider's page opens in a new window (the pay form's target=_blank); this page then polls
 * status.json and tells the embedding page the final status (an attempt that failed while the payment
 * stays payable brings back the options, with why, and tells nothing). Messages go to the one origin the
 * server put in the config, and only when that origin is one of the tenant's allowed origins (else
 * parent_origin is null and nothing is posted). The status comes from the platform (status.json),
 * which only a verified provider callback moves to SUCCEEDED: never from the provider's redirect.
 */
(function () {
  "use strict";

  var PREFIX = "billing-checkout:v1:";
  var FINAL = ["SUCCEEDED", "AUTHORIZED", "FAILED", "EXPIRED", "CANCELLED", "PARTIALLY_REFUNDED", "REFUNDED"];
  var config = JSON.parse(document.getElementById("embedded-config").textContent);
  var parentOrigin = config.parent_origin;
  var posted = null;
  var polling = false;
  var sawPending = config.status === "PROVIDER_PENDING";
  var deadline = 0;
  var delay = 1500;

  function post(message) {
    if (parentOrigin && window.parent !== window) {
      window.parent.postMessage(message, parentOrigin);
    }
  }

  function report(status, failureMessage) {
    if (FINAL.indexOf(status) < 0 || posted === status) {
      return false;
    }
    posted = status;
    post({type: PREFIX + "status", status: status, failure_message: failureMessage || null});
    return true;
  }

  async function poll() {
    if (Date.now() > deadline) {
      polling = false;
      return;
    }
    try {
      var response = await fetch(config.status_url, {cache: "no-store", headers: {Accept: "application/json"}});
      if (response.ok) {
        var data = await response.json();
        delay = 1500;
        if (FINAL.indexOf(data.status) >= 0) {
          report(data.status, data.failure_message);
          // The server renders the final page (what happened, the way back); it reports once more,
          // which the SDK ignores.
          window.location.reload();
          return;
        }
        if (data.status === "PROVIDER_PENDING") {
          sawPending = true;
        } else if (data.status === "CREATED" && (sawPending || data.failure_message !== config.failure_message)) {
          // The attempt failed and the payment is payable again (payments-svc's attempts): the server
          // renders why, and the ways to pay that are left. Nothing final, so nothing is posted.
          window.location.reload();
          return;
        }
      } else if (response.status === 404) {
        polling = false;
        return;
      } else {
        delay = Math.min(delay * 2, 15000);
      }
    } catch (error) {
      delay = Math.min(delay * 2, 15000);
    }
    setTimeout(poll, delay);
  }

  function startPolling() {
    deadline = Date.now() + 30 * 60 * 1000;
    if (!polling) {
      polling = true;
      setTimeout(poll, delay);
    }
  }

  // A payment already final when the modal opened (paid in an earlier visit) is reported at once.
  report(config.status, config.failure_message);

  // Escape inside the frame never reaches the embedding page: ask it to close the modal.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      post({type: PREFIX + "close"});
    }
  });

  var form = document.querySelector("form.providers");
  var wait = document.getElementById("embedded-wait");
  var again = document.getElementById("embedded-options");
  if (form && wait) {
    form.addEventListener("submit", function () {
      // The form still opens the provider's page in the new window; hide it only once submitted.
      setTimeout(function () {
        form.hidden = true;
        wait.hidden = false;
        if (again) {
          again.focus();
        }
      }, 0);
      startPolling();
    });
  }
  if (again) {
    again.addEventListener("click", function () {
      wait.hidden = true;
      form.hidden = false;
    });
  }
  if (config.status === "PROVIDER_PENDING") {
    startPolling();
  }
})();
