// Typed use of the client that openapi-typescript generates from /openapi.json. It compiles
// under `tsc --strict` only while the document is exact: required fields, enums, typed bodies.
// tests/test_typescript_client.py puts the generated `schema.d.ts` beside a copy of this file.
import type { components, paths } from "./schema";

type Schemas = components["schemas"];
type Ok<Path extends keyof paths, Method extends keyof paths[Path], Status extends number = 200> =
    paths[Path][Method] extends { responses: { [S in Status]: { content: infer C } } }
        ? C[keyof C]
        : never;

// The token: `token_type` is a required string (the literal "bearer").
export function authorization(token: Ok<"/v1/auth/token", "post">): string {
    const kind: string = token.token_type;
    const seconds: number = token.expires_in;
    return `${kind[0].toUpperCase()}${kind.slice(1)} ${token.access_token} (${seconds} s)`;
}

// The catalog is typed: narrowed enums, numbers, nullable MCID percentage.
export function improvementWord(catalog: Ok<"/v1/catalog", "get">): string {
    const metric = catalog.metrics[0];
    const better: "lower" | "higher" = metric.better;
    const slug: "pain" | "stiffness" | "mobility" | "rom" = metric.slug;
    const range: number = metric.max - metric.min;
    const threshold: number = metric.mcid_pct ?? metric.mcid_abs;
    const side: "left" | "right" | "both" = catalog.sides[0];
    const region: Schemas["CatalogRegion"]["slug"] = catalog.regions[0].slug;
    const tool: Schemas["SessionPublic"]["tool"] = catalog.tools[0];
    return `${slug} ${better} ${range} ${threshold} ${side} ${region} ${tool}`;
}

// A batch result's status is the union of the contract's literals: an exhaustive switch.
type BatchResult = Ok<"/v1/sessions/batch", "post">["results"][number];

export function describe(result: BatchResult): string {
    switch (result.status) {
        case "created":
        case "unchanged":
            return result.id ?? "";
        case "conflict":
            return `conflict on ${result.id}`;
        case "invalid":
            return (result.errors ?? []).map((error) => `${error.loc.join(".")}: ${error.msg}`).join("; ");
        default: {
            const unreachable: never = result.status;
            return unreachable;
        }
    }
}

// Readiness is typed.
export function isReady(body: Ok<"/readyz", "get">): boolean {
    const status: "ready" = body.status;
    return status === "ready";
}

export function isAlive(body: Ok<"/healthz", "get">): boolean {
    const status: "ok" = body.status;
    return status === "ok";
}

// A FHIR bundle is typed down to its Observations.
export function firstObservation(bundle: Ok<"/v1/export.fhir.json", "get">): string {
    const kind: "Bundle" = bundle.resourceType;
    const type: "collection" = bundle.type;
    const resource = bundle.entry[0].resource;
    const resourceType: "Observation" = resource.resourceType;
    const phase: "before" | "after" = resource.component[0].valueCodeableConcept.text;
    const value: number = resource.valueQuantity.value;
    const unit: "{score}" | "deg" = resource.valueQuantity.code;
    const site: string = resource.bodySite.text;
    const laterality = resource.bodySite.extension?.[0].valueCodeableConcept.text;
    const loinc = resource.code.coding?.[0].code;
    return `${kind} ${type} ${resourceType} ${phase} ${value} ${unit} ${site} ${laterality} ${loinc}`;
}

// A session's fields that are always there are read without `?` or `!`.
export function sessionLine(session: Ok<"/v1/sessions/{session_id}", "get">): string {
    const id: string = session.id;
    const version: number = session.version;
    const complete: boolean = session.complete;
    const startedAt: string = session.started_at;
    const endedAt: string | null = session.ended_at;
    const notes: string | null = session.notes;
    const rating = session.ratings[0];
    const region: Schemas["CatalogRegion"]["slug"] = rating.region;
    const side: "left" | "right" | "both" = rating.side;
    const change: number | null = rating.after === null ? null : rating.after - rating.before;
    return `${id} v${version} ${complete} ${startedAt} ${endedAt} ${notes} ${region} ${side} ${change}`;
}

export function feedLine(feed: Ok<"/v1/sessions/changes", "get">): string {
    const item = feed.items[0];
    const more: boolean = feed.has_more;
    return `${item.id} ${item.deleted} ${item.session?.version} ${feed.next_since} ${more}`;
}

// Errors are problem+json with a required `type`; `errors` may be left out.
export function problemText(problem: Schemas["Problem"]): string {
    const type: string = problem.type;
    return `${type} ${problem.status} ${problem.title}: ${problem.detail} ${problem.errors?.length ?? 0}`;
}

// Request bodies keep their optional fields optional.
export const newSession: Schemas["SessionCreate"] = {
    started_at: "2026-11-20T07:30:00+01:00",
    ratings: [{ region: "adductors", metric: "pain", before: 6 }],
};
export const account: Schemas["UserCreate"] = {
    email: "ana@example.com",
    password: "correct horse battery",
    display_name: "Ana",
};
export const rename: Schemas["UserUpdate"] = { display_name: "Ana B." };
export const webhook: Schemas["WebhookCreate"] = { url: "https://dashboard.example/hooks" };
