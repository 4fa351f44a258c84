import { guarded, modelInfo, onFile, predict, showError } from "/static/pages.js";
import { parseSeries, runsOf } from "./csv.js";
import { linePlot } from "./plot.js";

const MAX_LISTED = 8; // flagged stretches named one by one

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function range(values) {
  let low = Infinity, high = -Infinity;
  for (const v of values) { low = Math.min(low, v); high = Math.max(high, v); }
  return `from ${low.toPrecision(4)} to ${high.toPrecision(4)}`;
}

/** Where a stretch of rows is: its CSV lines, and its time when the file has timestamps. */
function where(series, [start, stop]) {
  const [a, b] = [series.lines[start], series.lines[stop - 1]];
  const lines = a === b ? `line ${a}` : `lines ${a}-${b}`;
  if (!series.timestamps) return lines;
  const first = series.timestamps[start], last = series.timestamps[stop - 1];
  return `${lines} (${first === last ? first : `${first} to ${last}`})`;
}

function show(name, series, score, anomaly) {
  const runs = runsOf(anomaly);
  text("count", String(anomaly.filter(Boolean).length));
  text("total", String(anomaly.length));
  const listed = runs.slice(0, MAX_LISTED).map((run) => where(series, run)).join("; ");
  const more = runs.length > MAX_LISTED ? `; and ${runs.length - MAX_LISTED} more` : "";
  const stretches = `${runs.length} stretch${runs.length > 1 ? "es" : ""}`;
  text("stretches", runs.length ? `In ${stretches}: ${listed}${more}.` : "Nothing flagged.");
  text("file-name", `(${name})`);
  text("value-range", range(series.values));
  text("score-range", range(score));
  text("first-time", series.timestamps ? series.timestamps[0] : `row 1`);
  text("last-time", series.timestamps ? series.timestamps.at(-1) : `row ${series.values.length}`);
  document.getElementById("series").replaceChildren(
    linePlot(series.values, runs, 300, `the values of ${name}, the flagged points shaded`));
  const scorePlot = linePlot(score, runs, 150, "each point's anomaly score, the flagged points shaded");
  scorePlot.classList.add("small");
  document.getElementById("score").replaceChildren(scorePlot);
  document.getElementById("result").hidden = false;
}

async function score(file) {
  document.getElementById("result").hidden = true; // never an old file's plot under a new file's error
  await guarded(async () => {
    const series = parseSeries(await file.text(), file.name);
    const reply = await predict({ inputs: { values: [series.values] } });
    show(file.name, series, reply.outputs.score[0], reply.outputs.anomaly[0]);
  });
}

const input = document.getElementById("file");
onFile(document.getElementById("drop"), input, (file) => {
  input.value = ""; // the same file chosen again (after fixing it) is read again
  score(file);
});

modelInfo()
  .then(({ info }) => {
    if (info.window) text("window", `It needs at least ${info.window} rows, one window of the model's.`);
  })
  .catch((error) => showError(error.message));
