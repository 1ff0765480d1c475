// Must NOT compile: "sideways" is not a direction of improvement. Proves the catalog is typed.
import type { paths } from "./schema";

type Catalog = paths["/v1/catalog"]["get"]["responses"][200]["content"]["application/json"];
export const better: Catalog["metrics"][number]["better"] = "sideways";
