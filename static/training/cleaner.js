/* Snapclass cleaner: post the page's forms with fetch, update the cards in place,
 * and drive the common actions from the keyboard. Without this script the same
 * forms post normally and the page reloads.
 */
(function () {
  "use strict";

  const grid = document.getElementById("cleaner-grid");
  const bulk = document.getElementById("bulk");
  if (!grid || !bulk) return;
  const statusLine = document.getElementById("cleaner-status");
  const selectAll = document.getElementById("select-all");
  const selectedCount = document.getElementById("selected-count");
  const cards = Array.from(grid.querySelectorAll(".clean-card[data-image]")).filter(
    (card) => card.dataset.image
  );
  let current = null;

  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  function checkbox(card) {
    return card.querySelector('input[type="checkbox"][name="image"]');
  }

  function selected() {
    return cards.filter((card) => checkbox(card).checked);
  }

  function refreshSelection() {
    const n = selected().length;
    cards.forEach((card) => card.classList.toggle("selected", checkbox(card).checked));
    selectedCount.textContent = n ? `${n} selected` : "";
    selectAll.checked = n > 0 && n === cards.length;
    selectAll.indeterminate = n > 0 && n < cards.length;
  }

  function cardOf(imageId) {
    return cards.find((card) => card.dataset.image === String(imageId));
  }

  function show(state) {
    const card = cardOf(state.id);
    if (!card) return;
    card.querySelector(".current-label").textContent = state.label || "unlabelled";
    card.querySelector(".current-status").textContent = state.status_display.toLowerCase();
    card.querySelector(".handled-badge").textContent = state.handled;
    card.classList.add("handled");
    const deleted = state.status === "deleted";
    card.classList.toggle("deleted", deleted);
    card.querySelector('button[value="delete"]').hidden = deleted;
    card.querySelector('button[value="restore"]').hidden = !deleted;
    if (state.label_id !== null) {
      card.querySelector('select[name="label"]').value = String(state.label_id);
    }
    checkbox(card).checked = false;
  }

  async function send(form, submitter) {
    const body = new URLSearchParams();
    for (const [key, value] of new FormData(form)) body.append(key, value);
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    if (form === bulk && !body.getAll("image").length) {
      say("Select some images first (x selects the highlighted one).", true);
      return;
    }
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      // Not form.action: the buttons named "action" shadow that property.
      const url = new URL(form.getAttribute("action") || "", window.location.href);
      const response = await fetch(url, {
        method: "POST",
        body,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      let data = null;
      try {
        data = await response.json();
      } catch (_) {
        data = {
          detail: response.redirected
            ? "You are signed out; reload the page and sign in. Nothing was changed."
            : `The server answered ${response.status}; reload the page.`,
        };
      }
      if (!response.ok || !Array.isArray(data.images)) {
        // A redirect to the login page also lands here: the session has ended.
        say(data.detail || `The server answered ${response.status}.`, true);
        return;
      }
      data.images.forEach(show);
      refreshSelection();
      say(data.detail, false);
    } catch (_) {
      say("The server could not be reached; nothing was changed.", true);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.classList || !form.classList.contains("cleaner-form")) return;
    event.preventDefault();
    send(form, event.submitter);
  });

  function focusCard(card) {
    if (!card) return;
    if (current) current.classList.remove("focused");
    current = card;
    card.classList.add("focused");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const at = cards.indexOf(current);
    const next = at < 0 ? 0 : Math.min(cards.length - 1, Math.max(0, at + step));
    focusCard(cards[next]);
  }

  grid.addEventListener("focusin", (event) => {
    const card = event.target.closest(".clean-card[data-image]");
    if (card && card !== current) {
      if (current) current.classList.remove("focused");
      current = card;
      card.classList.add("focused");
    }
  });

  function submitOn(form, action, labelIndex) {
    const button = form.querySelector(`button[value="${action}"]`);
    if (labelIndex !== undefined) {
      const select = form.querySelector('select[name="label"]');
      if (labelIndex >= select.options.length) {
        say(`There is no label number ${labelIndex + 1}.`, true);
        return false;
      }
      select.selectedIndex = labelIndex;
    }
    form.requestSubmit(button);
    return true;
  }

  function act(action, labelIndex, onSelection) {
    if (onSelection) {
      submitOn(bulk, action, labelIndex);
      return;
    }
    if (!current) {
      move(0);
      say("Highlighted the first image; press the key again to act on it.", false);
      return;
    }
    const form = current.querySelector("form.cleaner-form");
    if (submitOn(form, action, labelIndex)) move(1);
  }

  const ACTIONS = { k: "keep", d: "delete", u: "restore" };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = event.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    const key = event.key.toLowerCase();
    const digit = /^Digit([1-9])$/.exec(event.code);
    let handled = true;
    if (key === "n" || event.key === "ArrowRight") move(1);
    else if (key === "p" || event.key === "ArrowLeft") move(-1);
    else if (ACTIONS[key]) act(ACTIONS[key], undefined, event.shiftKey);
    else if (digit) act("relabel", Number(digit[1]) - 1, event.shiftKey);
    else if (key === "x" && current) {
      const box = checkbox(current);
      box.checked = !box.checked;
      refreshSelection();
    } else if (key === "a") {
      const all = selected().length !== cards.length;
      cards.forEach((card) => (checkbox(card).checked = all));
      refreshSelection();
    } else handled = false;
    if (handled) event.preventDefault();
  });

  document.getElementById("select-all-label").hidden = false;
  selectAll.addEventListener("change", () => {
    cards.forEach((card) => (checkbox(card).checked = selectAll.checked));
    refreshSelection();
  });
  grid.addEventListener("change", (event) => {
    if (event.target.name === "image") refreshSelection();
  });
  refreshSelection();
})();
