// Interface icons as inline SVG (emoji glyphs depend on the fonts a machine happens to have).
const PATHS = {
  lock: "M5 7V5a3 3 0 0 1 6 0v2h1v7H4V7h1zm2 0h2V5a1 1 0 0 0-2 0v2z",
  megaphone: "M2 6h3l6-3v10l-6-3H4l1 4H3l-1-4V6zm10 0.5h2v3h-2z",
  building: "M3 14V2h7v4h3v8H3zm2-10v2h2V4H5zm0 4v2h2V8H5zm6 0v2h1V8h-1zM5 12h2v2H5z",
  diamond: "M8 1l6 7-6 7-6-7 6-7z",
  group: "M5.5 8a2.5 2.5 0 1 1 0-5 2.5 2.5 0 0 1 0 5zm6-1a2 2 0 1 1 0-4 2 2 0 0 1 0 4zM1 14c0-2.5 2-4.5 4.5-4.5S10 11.5 10 14H1zm10 0c0-1.5-.5-2.8-1.3-3.8.5-.2 1-.3 1.8-.3 2 0 3.5 1.6 3.5 4.1h-4z",
  trash: "M6 1h4l1 1h3v2H2V2h3l1-1zM3 5h10l-1 10H4L3 5z",
  smile: "M8 15A7 7 0 1 1 8 1a7 7 0 0 1 0 14zm0-1.5a5.5 5.5 0 1 0 0-11 5.5 5.5 0 0 0 0 11zM5.5 7a1 1 0 1 1 0-2 1 1 0 0 1 0 2zm5 0a1 1 0 1 1 0-2 1 1 0 0 1 0 2zM4.8 9h6.4A3.4 3.4 0 0 1 8 12a3.4 3.4 0 0 1-3.2-3z",
  reply: "M6 3L1 8l5 5V9.5c4 0 6.5 1 8 4-0.5-4.5-3-7.5-8-8V3z",
  pencil: "M11.5 1.5l3 3L5 14H2v-3l9.5-9.5z",
  unread: "M8 11a3 3 0 1 1 0-6 3 3 0 0 1 0 6z",
} as const;

export type IconName = keyof typeof PATHS;

export function Icon({ name, size = 16 }: { name: IconName; size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 16 16" aria-hidden="true" focusable="false" className="svg-icon">
      <path d={PATHS[name]} fill="currentColor" fillRule="evenodd" />
    </svg>
  );
}
