// Plots for the bench report as plain SVG text: no browser, no canvas, no dependency. Three kinds
// are enough for what the report shows: cost against size (lines on log axes), distributions of
// raw samples (box plots with every sample as a dot), and ratios against a floor with their
// confidence intervals (a dot and a whisker per case, with the floor's 1x marked).

const WIDTH = 720;
const MARGIN = { top: 44, right: 24, bottom: 56, left: 84 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
const FONT_FAMILY = 'font-family="DejaVu Sans, Arial, sans-serif"';
const FONT = `${FONT_FAMILY} font-size="12"`;

export interface Series {
  name: string;
  points: { x: number; y: number; low?: number; high?: number }[];
}

export interface Distribution {
  name: string;
  /** The raw samples, in the unit of the axis. */
  values: number[];
}

export interface RatioRow {
  name: string;
  ratio: number;
  low: number;
  high: number;
}

function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
}

function num(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

/** A short label for a tick value: 1k, 10k, 1M; or three significant digits. */
export function tickLabel(v: number): string {
  const abs = Math.abs(v);
  if (abs >= 1e6 && Number.isInteger(v / 1e6)) return `${v / 1e6}M`;
  if (abs >= 1e3 && Number.isInteger(v / 1e3)) return `${v / 1e3}k`;
  if (abs >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return String(Number(v.toPrecision(3)));
}

interface Axis {
  min: number;
  max: number;
  log: boolean;
}

function axisOf(values: number[], log: boolean, includeZero = false): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (finite.length === 0) return { min: log ? 1 : 0, max: log ? 10 : 1, log };
  let min = Math.min(...finite);
  let max = Math.max(...finite);
  if (log) {
    min = 10 ** Math.floor(Math.log10(min));
    max = 10 ** Math.ceil(Math.log10(max));
    if (min === max) max = min * 10;
    return { min, max, log };
  }
  if (includeZero) min = Math.min(0, min);
  if (min === max) max = min + 1;
  const pad = (max - min) * 0.05;
  return { min: includeZero && min === 0 ? 0 : min - pad, max: max + pad, log };
}

function scale(axis: Axis, from: number, to: number): (v: number) => number {
  if (axis.log) {
    const a = Math.log10(axis.min);
    const b = Math.log10(axis.max);
    return (v) => from + ((Math.log10(Math.max(v, axis.min)) - a) / (b - a)) * (to - from);
  }
  return (v) => from + ((v - axis.min) / (axis.max - axis.min)) * (to - from);
}

function ticks(axis: Axis): number[] {
  if (axis.log) {
    const out: number[] = [];
    for (let e = Math.log10(axis.min); e <= Math.log10(axis.max) + 1e-9; e++) out.push(10 ** e);
    return out;
  }
  const span = axis.max - axis.min;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(axis.min / nice) * nice; v <= axis.max + 1e-9; v += nice)
    out.push(Number(v.toPrecision(12)));
  return out;
}

function frame(title: string, description: string, height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-labelledby="t d">`,
    `<title id="t">${escapeXml(title)}</title>`,
    `<desc id="d">${escapeXml(description)}</desc>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="24" ${FONT_FAMILY} font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function yAxis(axis: Axis, y: (v: number) => number, left: number, right: number, label: string): string[] {
  const out: string[] = [];
  for (const t of ticks(axis)) {
    const py = num(y(t));
    out.push(`<line x1="${left}" x2="${right}" y1="${py}" y2="${py}" stroke="#e5e5e5"/>`);
    out.push(
      `<text x="${left - 6}" y="${py}" ${FONT} text-anchor="end" dominant-baseline="middle">${tickLabel(t)}</text>`,
    );
  }
  const mid = num((y(axis.min) + y(axis.max)) / 2);
  out.push(
    `<text x="18" y="${mid}" ${FONT} text-anchor="middle" transform="rotate(-90 18 ${mid})">${escapeXml(label)}</text>`,
  );
  return out;
}

/** Cost against size: one line per series, log axes by default, whiskers where a point has low/high. */
export function linePlot(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  logX?: boolean;
  logY?: boolean;
}): string {
  const height = 400;
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right - 150;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const all = o.series.flatMap((s) => s.points);
  const xAxis = axisOf(
    all.map((p) => p.x),
    o.logX ?? true,
  );
  const yAxisSpec = axisOf(
    all.flatMap((p) => [p.y, p.low ?? p.y, p.high ?? p.y]),
    o.logY ?? true,
    true,
  );
  const x = scale(xAxis, left, right);
  const y = scale(yAxisSpec, bottom, top);
  const body = yAxis(yAxisSpec, y, left, right, o.yLabel);
  for (const t of ticks(xAxis)) {
    const px = num(x(t));
    body.push(`<line x1="${px}" x2="${px}" y1="${top}" y2="${bottom}" stroke="#f0f0f0"/>`);
    body.push(`<text x="${px}" y="${bottom + 16}" ${FONT} text-anchor="middle">${tickLabel(t)}</text>`);
  }
  body.push(
    `<text x="${num((left + right) / 2)}" y="${height - 14}" ${FONT} text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
  );
  body.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#888"/>`,
  );
  o.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? '#000';
    const points = [...s.points].sort((a, b) => a.x - b.x);
    const path = points.map((p, j) => `${j === 0 ? 'M' : 'L'}${num(x(p.x))},${num(y(p.y))}`).join(' ');
    body.push(
      `<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"><title>${escapeXml(s.name)}</title></path>`,
    );
    for (const p of points) {
      if (p.low !== undefined && p.high !== undefined) {
        body.push(
          `<line x1="${num(x(p.x))}" x2="${num(x(p.x))}" y1="${num(y(p.low))}" y2="${num(y(p.high))}" stroke="${colour}"/>`,
        );
      }
      body.push(
        `<circle cx="${num(x(p.x))}" cy="${num(y(p.y))}" r="3.5" fill="${colour}"><title>${escapeXml(`${s.name}: ${tickLabel(p.x)} → ${tickLabel(p.y)}`)}</title></circle>`,
      );
    }
    const ly = top + 14 + i * 18;
    body.push(
      `<line x1="${right + 12}" x2="${right + 30}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`,
    );
    body.push(
      `<text x="${right + 36}" y="${ly}" ${FONT} dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  const description = o.series
    .map((s) => `${s.name}: ${s.points.map((p) => `${tickLabel(p.x)}→${tickLabel(p.y)}`).join(', ')}`)
    .join('; ');
  return frame(o.title, description, height, body);
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] ?? 0) + ((sorted[hi] ?? 0) - (sorted[lo] ?? 0)) * (pos - lo);
}

/** Distributions of raw samples: per row a box (p25-p75, median line), whiskers p5-p95, every sample a faint dot. */
export function boxPlot(o: { title: string; xLabel: string; rows: Distribution[]; logX?: boolean }): string {
  const rowHeight = 34;
  const height = MARGIN.top + MARGIN.bottom + rowHeight * Math.max(1, o.rows.length);
  const left = 200;
  const right = WIDTH - MARGIN.right;
  const bottom = height - MARGIN.bottom;
  const axis = axisOf(
    o.rows.flatMap((r) => r.values),
    o.logX ?? true,
  );
  const x = scale(axis, left, right);
  const body: string[] = [];
  for (const t of ticks(axis)) {
    const px = num(x(t));
    body.push(`<line x1="${px}" x2="${px}" y1="${MARGIN.top}" y2="${bottom}" stroke="#eeeeee"/>`);
    body.push(`<text x="${px}" y="${bottom + 16}" ${FONT} text-anchor="middle">${tickLabel(t)}</text>`);
  }
  body.push(
    `<text x="${num((left + right) / 2)}" y="${height - 14}" ${FONT} text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
  );
  const summaries: string[] = [];
  o.rows.forEach((r, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? '#000';
    const cy = MARGIN.top + rowHeight * i + rowHeight / 2;
    const sorted = [...r.values].filter(Number.isFinite).sort((a, b) => a - b);
    const [p5, p25, p50, p75, p95] = [0.05, 0.25, 0.5, 0.75, 0.95].map((q) => quantile(sorted, q)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    body.push(
      `<text x="${left - 8}" y="${cy}" ${FONT} text-anchor="end" dominant-baseline="middle">${escapeXml(r.name)}</text>`,
    );
    const step = Math.max(1, Math.floor(sorted.length / 400));
    for (let j = 0; j < sorted.length; j += step) {
      const jitter = ((j * 7919) % 13) - 6;
      body.push(
        `<circle cx="${num(x(sorted[j] ?? 0))}" cy="${num(cy + jitter)}" r="1.2" fill="${colour}" fill-opacity="0.25"/>`,
      );
    }
    body.push(`<line x1="${num(x(p5))}" x2="${num(x(p95))}" y1="${cy}" y2="${cy}" stroke="${colour}"/>`);
    body.push(
      `<rect x="${num(x(p25))}" y="${cy - 9}" width="${num(Math.max(1, x(p75) - x(p25)))}" height="18" fill="${colour}" fill-opacity="0.18" stroke="${colour}"/>`,
    );
    body.push(
      `<line x1="${num(x(p50))}" x2="${num(x(p50))}" y1="${cy - 11}" y2="${cy + 11}" stroke="${colour}" stroke-width="2.5"/>`,
    );
    summaries.push(
      `${r.name}: median ${tickLabel(p50)}, p25-p75 ${tickLabel(p25)}-${tickLabel(p75)}, n=${sorted.length}`,
    );
  });
  return frame(o.title, summaries.join('; '), height, body);
}

/** Ratios against a floor: a dot at the median ratio and a whisker over its confidence interval, on a log axis with 1x marked. */
export function ratioPlot(o: { title: string; floor: string; rows: RatioRow[] }): string {
  const rowHeight = 28;
  const height = MARGIN.top + MARGIN.bottom + rowHeight * Math.max(1, o.rows.length);
  const left = 240;
  const right = WIDTH - MARGIN.right;
  const bottom = height - MARGIN.bottom;
  const axis = axisOf([1, ...o.rows.flatMap((r) => [r.low, r.high, r.ratio])], true);
  const x = scale(axis, left, right);
  const body: string[] = [];
  for (const t of ticks(axis)) {
    const px = num(x(t));
    body.push(
      `<line x1="${px}" x2="${px}" y1="${MARGIN.top}" y2="${bottom}" stroke="${t === 1 ? '#444' : '#eeeeee'}"/>`,
    );
    body.push(`<text x="${px}" y="${bottom + 16}" ${FONT} text-anchor="middle">${tickLabel(t)}×</text>`);
  }
  body.push(
    `<text x="${num((left + right) / 2)}" y="${height - 14}" ${FONT} text-anchor="middle">${escapeXml(`median ratio to ${o.floor} (95% bootstrap interval)`)}</text>`,
  );
  o.rows.forEach((r, i) => {
    const cy = MARGIN.top + rowHeight * i + rowHeight / 2;
    body.push(
      `<text x="${left - 8}" y="${cy}" ${FONT} text-anchor="end" dominant-baseline="middle">${escapeXml(r.name)}</text>`,
    );
    body.push(
      `<line x1="${num(x(r.low))}" x2="${num(x(r.high))}" y1="${cy}" y2="${cy}" stroke="#1f77b4" stroke-width="2"/>`,
    );
    body.push(
      `<circle cx="${num(x(r.ratio))}" cy="${cy}" r="4.5" fill="#1f77b4"><title>${escapeXml(`${r.name}: ${r.ratio.toFixed(2)}×`)}</title></circle>`,
    );
    body.push(
      `<text x="${num(Math.min(right - 40, x(r.high) + 8))}" y="${cy}" ${FONT} dominant-baseline="middle">${r.ratio.toFixed(2)}×</text>`,
    );
  });
  const description = o.rows
    .map((r) => `${r.name}: ${r.ratio.toFixed(2)}× (${r.low.toFixed(2)}-${r.high.toFixed(2)})`)
    .join('; ');
  return frame(o.title, description, height, body);
}
