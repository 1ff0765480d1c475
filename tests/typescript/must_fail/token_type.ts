// Must NOT compile: a token without `token_type`. Proves the field is required.
import type { components } from "./schema";

export const token: components["schemas"]["Token"] = { access_token: "abc", expires_in: 3600 };
