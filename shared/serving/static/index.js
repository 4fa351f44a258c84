import { formatMetric, showError } from "/static/pages.js";

function cell(row, content, className = "") {
  const td = document.createElement("td");
  td.className = className;
  if (typeof content === "string") td.textContent = content;
  else td.append(content);
  row.append(td);
}

async function main() {
  const models = await (await fetch("/pages/models.json")).json();
  const body = document.getElementById("models");
  for (const model of models) {
    const row = document.createElement("tr");
    row.dataset.model = model.name;
    let name = model.name;
    if (model.page) {
      name = document.createElement("a");
      name.href = model.page;
      name.textContent = model.name;
    }
    cell(row, name);
    cell(row, model.versions.length > 1 ? `${model.version} (of ${model.versions.join(", ")})` : `${model.version}`);
    const metrics = Object.entries(model.metrics);
    cell(row, metrics.length ? metrics.map(([k, v]) => `${k.replace(/^test_/, "")} ${formatMetric(k, v)}`).join(", ") : "not measured");
    cell(row, model.signatures.join(", "), "wide");
    body.append(row);
  }
}

main().catch((error) => showError(error.message));
