// What jsonb holds: snapshot states are converted to this explicitly (bigint has no JSON form).

export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
