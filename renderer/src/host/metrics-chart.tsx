import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
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

  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const colour = COLOURS[(index - 1) % COLOURS.length] ?? '#2f7ed8';
    const chart = new uPlot(
      {
        width: Math.max(240, el.clientWidth || 320),
        height: 120,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true } },
        axes: [
          { stroke: 'var(--muted, #777)', grid: { stroke: 'rgba(128,128,128,0.15)' }, size: 28 },
          { stroke: 'var(--muted, #777)', grid: { stroke: 'rgba(128,128,128,0.15)' }, size: 56 },
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
  }, [series, index]);

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
