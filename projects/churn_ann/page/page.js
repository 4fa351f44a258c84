import { bars, guarded, modelInfo, predict, showError } from "/static/pages.js";

// Built from the export's page.json (projects/churn_ann/export.py page_info): one field per raw column.
const form = document.getElementById("customer");
let columns = [];
let threshold = 0.5;

/** One column's label, control (a select of its training values, or a number input) and hint. */
function field(column) {
  const id = `field-${column.name}`;
  const wrapper = document.createElement("div");
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = column.name;
  let control;
  if (column.kind === "choice") {
    control = document.createElement("select");
    for (const value of column.values) {
      control.add(new Option(String(value), String(value), false, value === column.default));
    }
  } else {
    control = document.createElement("input");
    control.type = "number";
    control.step = "any";
    control.inputMode = "decimal";
    control.value = String(column.default);
    if (column.min >= 0) control.min = "0";
  }
  control.id = id;
  control.name = column.name;
  wrapper.append(label, control);
  if (column.kind === "number") {
    const hint = document.createElement("small");
    hint.className = "hint";
    hint.id = `${id}-hint`;
    hint.textContent = `training median ${column.default}; range ${column.min} to ${column.max}`;
    if (column.blank) hint.textContent += `; leave blank for ${column.blank.product_of.join(" × ")}, as training did`;
    control.setAttribute("aria-describedby", hint.id);
    wrapper.append(hint);
  }
  return wrapper;
}

/** An error about one control: it is marked invalid and gets the focus, so a person sees which. */
function problem(control, message) {
  control.setAttribute("aria-invalid", "true");
  control.focus();
  return new Error(message);
}

/** The number typed for a column; null when it is blank; throws what is wrong with it. */
function numberOf(column, control) {
  if (control.validity.badInput) throw problem(control, `${column.name}: what is typed there is not a number`);
  if (control.value.trim() === "") return null;
  const value = Number(control.value);
  if (!Number.isFinite(value)) throw problem(control, `${column.name}: ${control.value} is not a finite number`);
  if (column.min >= 0 && value < 0) {
    throw problem(control, `${column.name} cannot be negative: in training it ran from ${column.min} to ${column.max}`);
  }
  return value;
}

/** The form as one instance naming every input, as the signature takes it, and any blank it filled. */
function instanceOfForm() {
  const instance = {};
  const filled = [];
  for (const column of columns) {
    const control = form.elements[column.name];
    if (column.kind === "choice") {
      instance[column.name] = column.type === "string" ? control.value : Number(control.value);
      continue;
    }
    const value = numberOf(column, control);
    if (value === null && !column.blank) {
      throw problem(control, `${column.name} is empty: type a number (the training median was ${column.default})`);
    }
    instance[column.name] = value;
  }
  // JSON cannot carry the NaN the model fills itself, so a blank is filled here with training's rule
  for (const column of columns) {
    if (column.kind !== "number" || instance[column.name] !== null) continue;
    const factors = column.blank.product_of;
    instance[column.name] = factors.reduce((product, name) => product * instance[name], 1);
    filled.push(`${column.name} was blank: sent ${factors.join(" × ")} = ${instance[column.name]}, as training fills it`);
  }
  return { instance, filled };
}

function clearAnswer() {
  document.getElementById("probability").textContent = "-";
  document.getElementById("decision").textContent = "-";
  document.getElementById("decision").classList.remove("churn");
  document.getElementById("bars").replaceChildren();
  document.getElementById("filled").hidden = true;
}

function showAnswer(probability, filled) {
  const churns = probability >= threshold;
  document.getElementById("probability").textContent = probability.toFixed(3);
  const decision = document.getElementById("decision");
  decision.textContent = `${churns ? "Likely to churn" : "Likely to stay"} (${probability.toFixed(3)} is ${
    churns ? "at or above" : "below"} the threshold ${threshold.toFixed(3)})`;
  decision.classList.toggle("churn", churns);
  bars(document.getElementById("bars"), ["stays", "churns"], [1 - probability, probability], churns ? 1 : 0);
  const note = document.getElementById("filled");
  note.textContent = filled.join("; ");
  note.hidden = !filled.length;
}

async function score() {
  for (const control of form.elements) control.removeAttribute("aria-invalid");
  let row;
  try {
    row = instanceOfForm();
  } catch (error) {
    clearAnswer();
    showError(error.message);
    return;
  }
  await guarded(async () => {
    clearAnswer();
    const reply = await predict({ instances: [row.instance] });
    showAnswer(reply.predictions[0], row.filled); // one output: each prediction is the value itself
  });
}

async function main() {
  const { info } = await modelInfo();
  columns = info.columns || [];
  if (!columns.length) {
    throw new Error("this export has no form description (assets.extra/page.json): export the run again");
  }
  document.getElementById("fields").replaceChildren(...columns.map(field));
  const note = document.getElementById("threshold");
  if (typeof info.threshold === "number") {
    threshold = info.threshold;
    note.textContent = `The decision uses the run's threshold, ${threshold.toFixed(3)}, chosen on the validation ` +
      `split (${info.threshold_chosen_by}): a probability at or above it means likely to churn.`;
  } else {
    note.textContent = "This export records no threshold: the decision uses 0.5.";
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    score();
  });
  document.getElementById("score").disabled = false;
}

main().catch((error) => showError(error.message));
