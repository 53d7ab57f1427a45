// Keyboard labelling: one key per class toggles it, Enter saves, "u" undoes, "s" skips.
// The exclusivity rules come from the server (the #label-rules JSON), which checks them again on save.
(function () {
  "use strict";

  const form = document.getElementById("label-form");
  const undoForm = document.getElementById("undo-form");
  const skipForm = document.getElementById("skip-form");
  const rulesNode = document.getElementById("label-rules");
  const note = document.getElementById("rule-note");
  const rules = rulesNode ? JSON.parse(rulesNode.textContent) : { alone: [], clean: "clean", defects: [], pairs: [] };

  const boxes = form ? Array.from(form.querySelectorAll("input[name=labels]")) : [];
  const boxByKey = new Map();
  const boxByName = new Map();
  for (const box of boxes) {
    boxByName.set(box.value, box);
    boxByKey.set(box.closest("label").dataset.key, box);
  }
  let submitting = false;

  function say(text) {
    if (note) note.textContent = text;
  }

  function uncheck(names, because) {
    const dropped = [];
    for (const name of names) {
      const box = boxByName.get(name);
      if (box && box.checked) {
        box.checked = false;
        dropped.push(name);
      }
    }
    if (dropped.length) say(`Removed ${dropped.join(", ")}: ${because}`);
  }

  // Apply the rules after `chosen` was ticked. The newest choice wins, so conflicting labels are removed.
  function enforce(chosen) {
    say("");
    const checked = boxes.filter((box) => box.checked).map((box) => box.value);
    if (rules.alone.includes(chosen)) {
      uncheck(checked.filter((name) => name !== chosen), `'${chosen}' excludes every other label.`);
      return;
    }
    const alone = checked.filter((name) => rules.alone.includes(name));
    if (alone.length) uncheck(alone, `'${alone[0]}' excludes every other label.`);
    if (chosen === rules.clean) {
      uncheck(checked.filter((name) => rules.defects.includes(name)), "'clean' excludes defect labels.");
    } else if (rules.defects.includes(chosen)) {
      uncheck([rules.clean], `'${chosen}' is a defect, so the cover is not clean.`);
    }
    for (const pair of rules.pairs) {
      if (pair.includes(chosen)) {
        uncheck(pair.filter((name) => name !== chosen), `'${pair[0]}' and '${pair[1]}' exclude each other.`);
      }
    }
  }

  for (const box of boxes) {
    box.addEventListener("change", () => {
      if (box.checked) enforce(box.value);
    });
  }

  function submit(target) {
    if (!target || submitting) return;
    submitting = true;
    target.requestSubmit();
  }

  if (form) {
    form.addEventListener("submit", (event) => {
      if (!boxes.some((box) => box.checked)) {
        event.preventDefault();
        submitting = false;
        say("Pick at least one label before saving.");
      }
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement && target.type !== "checkbox") return;
    if (target instanceof HTMLTextAreaElement) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === "Enter") {
      event.preventDefault();
      submit(form);
    } else if (key === "u") {
      event.preventDefault();
      const button = document.querySelector("button[form=undo-form], #undo-form button");
      if (button && !button.disabled) submit(undoForm);
      else say("Nothing to undo in this session.");
    } else if (key === "s") {
      event.preventDefault();
      submit(skipForm);
    } else if (boxByKey.has(key)) {
      event.preventDefault();
      const box = boxByKey.get(key);
      box.checked = !box.checked;
      if (box.checked) enforce(box.value);
      else say("");
    }
  });
})();
