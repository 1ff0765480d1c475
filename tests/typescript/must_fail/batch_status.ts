// Must NOT compile: "deleted" is not a batch status. Proves the status is an enum.
import type { components } from "./schema";

export const status: components["schemas"]["BatchItemResult"]["status"] = "deleted";
