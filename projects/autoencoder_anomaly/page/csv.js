// A timestamp,value CSV (NAB's form) read the way projects/autoencoder_anomaly/data.py reads one: a header
// naming the columns, then one row per line in time order. The model takes one unbroken stretch of finite
// numbers, so a row whose value is not a number is an error naming its line, never a silent zero or gap.

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const LISTED = 5; // bad lines named one by one

/** The cells of one line: commas split, double quotes around a cell (and "" inside one) understood. */
function cells(line) {
  const out = [];
  let cell = "", quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '"' && line[i + 1] === '"') { cell += '"'; i++; }
    else if (c === '"') quoted = !quoted;
    else if (c === "," && !quoted) { out.push(cell.trim()); cell = ""; }
    else cell += c;
  }
  out.push(cell.trim());
  return out;
}

/** CSV text -> {values, timestamps (or null), lines}; throws an Error saying what is wrong and where. */
export function parseSeries(text, name) {
  if (!text.trim()) throw new Error(`${name} is empty`);
  const rows = text.replace(/^\ufeff/, "").split(/\r\n|\n|\r/);
  const header = cells(rows[0] || "").map((cell) => cell.toLowerCase());
  const valueColumn = header.indexOf("value"), timeColumn = header.indexOf("timestamp");
  if (valueColumn < 0) {
    throw new Error(`${name}: the header must name a value column (timestamp,value as in NAB's files); ` +
      `found ${JSON.stringify(header)}`);
  }
  const values = [], timestamps = [], lines = [], bad = [];
  rows.slice(1).forEach((row, i) => {
    if (!row.trim()) return; // a blank line holds no row
    const line = i + 2, fields = cells(row), cell = fields[valueColumn] ?? "";
    const value = NUMBER.test(cell) ? Number(cell) : NaN;
    if (!cell) bad.push(`line ${line}: the value is missing`);
    else if (!Number.isFinite(value)) bad.push(`line ${line}: value ${JSON.stringify(cell)} is not a number`);
    values.push(value);
    timestamps.push(timeColumn >= 0 ? fields[timeColumn] ?? "" : "");
    lines.push(line);
  });
  if (bad.length) {
    const more = bad.length > LISTED ? `; and ${bad.length - LISTED} more lines` : "";
    throw new Error(`${name}: ${bad.slice(0, LISTED).join("; ")}${more}. The model scores an unbroken ` +
      "stretch of numbers: fix or remove these rows.");
  }
  if (!values.length) throw new Error(`${name} holds no rows under its header`);
  return { values, timestamps: timeColumn >= 0 ? timestamps : null, lines };
}

/** [start, stop) of every run of true flags. */
export function runsOf(flags) {
  const runs = [];
  flags.forEach((flag, i) => {
    if (!flag) return;
    if (runs.length && runs[runs.length - 1][1] === i) runs[runs.length - 1][1] = i + 1;
    else runs.push([i, i + 1]);
  });
  return runs;
}
