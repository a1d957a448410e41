import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useConsoleStore } from '../state/console-store.js';
import type { MetricSeries } from './metrics-history.js';

const COLOURS = ['#2f7ed8', '#d9534f', '#3c9d5d', '#8e6bbf'];

/**
 * One small time chart (uPlot) of one series of the live panel. The chart is made once; each new
 * sample only hands uPlot the new columns (setData), so an open console does not rebuild it.
 */
export function MetricsChart({
  series,
  index,
  data,
  version,
}: {
  series: MetricSeries;
  /** The series' column in data (data[0] is time). */
  index: number;
  data: () => number[][];
  /** Changes with every new sample. */
  version: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // the canvas knows no CSS variables: the theme's colours are read when the chart is made
  const theme = useConsoleStore((s) => s.theme);

  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const colour = COLOURS[(index - 1) % COLOURS.length] ?? '#2f7ed8';
    const css = getComputedStyle(document.documentElement);
    const text = css.getPropertyValue('--muted').trim() || '#5d6b7e';
    const grid = css.getPropertyValue('--rule').trim() || '#eef1f5';
    const chart = new uPlot(
      {
        width: Math.max(240, el.clientWidth || 320),
        height: 120,
        legend: { show: false },
        cursor: { show: false },
        scales: {
          x: { time: true },
          ...(series.unit === '%' ? { y: { range: [0, 100] as [number, number] } } : {}),
        },
        axes: [
          { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid }, size: 28 },
          { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid }, size: 56 },
        ],
        series: [{}, { label: series.label, stroke: colour, width: 2, fill: `${colour}22`, spanGaps: false }],
      },
      [[], []],
      el,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() =>
      chart.setSize({ width: Math.max(240, el.clientWidth), height: 120 }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // a new chart starts empty: give it the samples so far
    chart.setData(((all) => [all[0] ?? [], all[index] ?? []])(data()));
  }, [series, index, theme, data]);

  useEffect(() => {
    const all = data();
    plot.current?.setData([all[0] ?? [], all[index] ?? []]);
  }, [version, data, index]);

  const all = data();
  const column = all[index] ?? [];
  const last = column.length > 0 ? column[column.length - 1] : undefined;
  return (
    <figure className="metric-chart" data-testid={`chart-${series.key}`} data-points={column.length}>
      <figcaption>
        <span>{series.label}</span>
        <strong>
          {last === undefined || Number.isNaN(last)
            ? 'not measured'
            : `${last.toFixed(series.unit === '%' ? 1 : 0)} ${series.unit}`}
        </strong>
      </figcaption>
      <div ref={box} className="metric-chart-plot" role="img" aria-label={`${series.label} over time`} />
    </figure>
  );
}
