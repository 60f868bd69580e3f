// The new-classifier form, better with JavaScript: the label each typed name
// becomes (and clashes) as you type, and the URL box only for the URL list.
(function () {
  "use strict";
  const form = document.getElementById("project-form");
  if (!form) return;
  const classes = form.querySelector("textarea[name=classes]");
  const preview = document.getElementById("slug-preview");
  const urls = document.getElementById("urls-field");

  // Like Django's slugify: ASCII letters, digits, hyphens and underscores.
  function slugify(text) {
    return text.normalize("NFKD").replace(/[^\x00-\x7f]/g, "")
      .replace(/[^\w\s-]/g, "").trim().toLowerCase().replace(/[-\s]+/g, "-")
      .replace(/^[-_]+|[-_]+$/g, "");
  }

  function showSlugs() {
    const seen = new Map();
    preview.replaceChildren();
    for (const raw of classes.value.split("\n")) {
      const name = raw.trim().replace(/\s+/g, " ");
      if (!name || name.startsWith("#")) continue;
      const slug = slugify(name);
      const li = document.createElement("li");
      if (!slug) {
        li.className = "error";
        li.textContent = `“${name}” has no letters or digits to make a label from`;
      } else if (seen.has(slug)) {
        li.className = "error";
        li.textContent = `“${seen.get(slug)}” and “${name}” would both be the label “${slug}”`;
      } else {
        seen.set(slug, name);
        li.textContent = `${name} → ${slug}`;
      }
      preview.append(li);
    }
    preview.hidden = preview.children.length === 0;
  }

  function showUrls() {
    const chosen = form.querySelector("input[name=provider]:checked");
    urls.hidden = !chosen || chosen.value !== "urls";
  }

  classes.addEventListener("input", showSlugs);
  for (const radio of form.querySelectorAll("input[name=provider]")) {
    radio.addEventListener("change", showUrls);
  }
  const train = form.querySelector("input[name=train]");
  const button = document.getElementById("create-button");
  train.addEventListener("change", () => {
    button.textContent = train.checked ? "Find images and train" : "Find images";
  });
  form.addEventListener("submit", () => {
    button.disabled = true;
    button.textContent = "Starting…";
  });
  showSlugs();
  showUrls();
})();
