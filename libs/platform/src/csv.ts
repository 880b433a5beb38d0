// RFC 4180 CSV: a header row, then one row per record; fields with a comma, quote or line break are
// quoted, quotes doubled. Formula-looking text is prefixed with ' so a spreadsheet shows it, never runs it.
export function toCsv(
  columns: readonly string[],
  rows: ReadonlyArray<Record<string, unknown>>,
): string {
  const field = (value: unknown): string => {
    if (value === null || value === undefined) return '';
    let text = typeof value === 'string' ? value : JSON.stringify(value);
    if (/^[=+\-@\t\r]/.test(text) && !/^-?\d/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => field(r[c])).join(','))]
    .map((line) => `${line}\r\n`)
    .join('');
}
