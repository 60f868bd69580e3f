// Pages that show jobs keep themselves current: an element with data-live-src
// has its content replaced by what that URL answers (the same rows the server
// rendered), every 2 s while something is still queued or running (the answer
// carries data-active) and every 10 s otherwise, so rows started elsewhere appear.
(function () {
  "use strict";
  for (const box of document.querySelectorAll("[data-live-src]")) {
    let timer = null;
    const active = () => box.querySelector("[data-active]") !== null;
    async function refresh() {
      timer = null;
      if (!document.hidden) {
        try {
          const res = await fetch(box.dataset.liveSrc, {
            headers: { Accept: "text/html" }, credentials: "same-origin",
          });
          if (res.ok) {
            const html = await res.text();
            if (html !== box.dataset.liveLast) {
              box.innerHTML = html;
              box.dataset.liveLast = html;
              box.dispatchEvent(new CustomEvent("live:update", { bubbles: true }));
            }
          }
        } catch (err) {
          // The server may be restarting: try again on the next tick.
        }
      }
      timer = setTimeout(refresh, active() ? 2000 : 10000);
    }
    box.dataset.liveLast = box.innerHTML;
    timer = setTimeout(refresh, active() ? 2000 : 10000);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer !== null) {
        clearTimeout(timer);
        refresh();
      }
    });
  }
})();
