/**
 * The tagging API over GraphQL (graphql-js), HTTP handling included:
 *   POST /graphql   application/json {"query", "variables", "operationName"}, or application/graphql (the query)
 *   GET  /graphql?query=…&variables=…
 * Limits, each a GraphQL error with its code and a 4xx: the body (64 KiB), the query text (8 KiB), its depth (6),
 * its field count (32, aliases included: one query cannot ask for a thousand pages at once) and the list items it
 * may answer (1 000: each urls field weighs its page, 100 URLs unless `first` says otherwise).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  buildSchema,
  execute,
  GraphQLError,
  Kind,
  parse,
  specifiedRules,
  validate,
  type ASTVisitor,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import { httpStatus, NodescaleError, type ErrorCode } from '../errors.ts';
import { sendJson } from '../json-response.ts';
import { readAtMost } from '../read-body.ts';
import { URL_PAGE } from './store.ts';
import type { Tagger } from './tagger.ts';

export const GRAPHQL_LIMITS = Object.freeze({
  bodyBytes: 64 * 1024,
  queryChars: 8 * 1024,
  depth: 6,
  fields: 32,
  listItems: 1_000,
});

export const SCHEMA_SDL = `
type Query {
  "The topic tags of the page at url: fetched, extracted, cached, and added to the index."
  tags(url: String!): [String!]!
  """
  A page of the URLs tagged with tag, in URL order: first of them (1 to ${URL_PAGE.max}), after the URL after. The next
  page: after = the last URL of this one. Fewer than first: the last page.
  """
  urls(tag: String!, first: Int = ${URL_PAGE.first}, after: String): [String!]!
  "Whether the service is up, and what it holds."
  health: Health!
}

type Health {
  "ok, or degraded while the shared store (Redis) cannot be reached: tags(url) still answers, urls(tag) cannot."
  status: String!
  compute: String!
  "embedded (in this process) or redis (shared by every worker)."
  store: String!
  "null while the store cannot say."
  indexedUrls: Int
  indexedTags: Int
  "The process that answered: which API worker, behind a balancer or nodescale run."
  pid: Int!
}
`;

const schema = buildSchema(SCHEMA_SDL);

/**
 * What a selection set asks for: the levels of fields below it, how many fields, and how many list items they may
 * answer (counts capped just past their limits).
 */
interface Cost {
  depth: number;
  fields: number;
  items: number;
}

const NOTHING: Cost = Object.freeze({ depth: 0, fields: 0, items: 0 });

/**
 * Depth and field count over fragments too, in time linear in the document: each fragment is measured once and its
 * cost reused wherever it is spread (a fragment spread twice per level, twenty levels deep, is a million paths
 * if walked, and was: 6–21 s of a blocked event loop for an 899-byte query). Counts saturate just past the limits,
 * so numbers stay small however a query multiplies them. A fragment cycle counts as nothing here
 * (graphql-js's NoFragmentCycles rule reports it).
 *
 * A paged list weighs its page: `urls` answers up to `first` URLs, so 32 aliases of a popular tag were 221 MB in one
 * answer. `first` is read from the query, or from the request's variables (the rule is made per request).
 */
const complexityRule =
  (variables: Readonly<Record<string, unknown>>) =>
  (context: ValidationContext): ASTVisitor => {
    const definitions = new Map(
      context
        .getDocument()
        .definitions.flatMap((d) =>
          d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d.selectionSet] as const] : [],
        ),
    );
    // A variable's default, where its value is not given (the first operation declaring it, if several do).
    const defaults = new Map<string, unknown>();
    for (const d of context.getDocument().definitions) {
      if (d.kind !== Kind.OPERATION_DEFINITION) continue;
      for (const v of d.variableDefinitions ?? []) {
        const name = v.variable.name.value;
        if (!defaults.has(name) && v.defaultValue?.kind === Kind.INT) defaults.set(name, Number(v.defaultValue.value));
      }
    }
    const costs = new Map<string, Cost>();
    const measuring = new Set<string>();
    const cap = (fields: number) => Math.min(fields, GRAPHQL_LIMITS.fields + 1);
    const capItems = (items: number) => Math.min(items, GRAPHQL_LIMITS.listItems + 1);
    /** How many items the field may answer: its page for urls, nothing for any other field (none is a list). */
    const pageOf = (field: FieldNode): number => {
      if (field.name.value !== 'urls') return 0;
      const value = field.arguments?.find((a) => a.name.value === 'first')?.value;
      let first: unknown = URL_PAGE.first;
      if (value?.kind === Kind.INT) first = Number(value.value);
      else if (value?.kind === Kind.VARIABLE) {
        const name = value.name.value;
        first = (Object.hasOwn(variables, name) ? variables[name] : undefined) ?? defaults.get(name) ?? URL_PAGE.first;
      }
      // A value of the wrong type is refused by graphql-js (validation, or the coercion of variables).
      if (typeof first !== 'number') return 0;
      if (Number.isInteger(first) && first >= 1 && first <= URL_PAGE.max) return first;
      context.reportError(
        new GraphQLError(`first must be an integer from 1 to ${URL_PAGE.max}, got ${first}`, {
          nodes: field,
          extensions: { code: 'NS_ERR_INVALID_PAGE' },
        }),
      );
      return 0;
    };
    const fragment = (name: string): Cost => {
      const known = costs.get(name);
      if (known !== undefined) return known;
      const set = definitions.get(name);
      if (set === undefined || measuring.has(name)) return NOTHING;
      measuring.add(name);
      const cost = measure(set);
      measuring.delete(name);
      costs.set(name, cost);
      return cost;
    };
    function measure(set: SelectionSetNode): Cost {
      let depth = 0;
      let fields = 0;
      let items = 0;
      for (const selection of set.selections) {
        if (selection.kind === Kind.FIELD) {
          // A field counts, and is one level above what it selects.
          const inner = selection.selectionSet === undefined ? NOTHING : measure(selection.selectionSet);
          depth = Math.max(depth, 1 + inner.depth);
          fields = cap(fields + 1 + inner.fields);
          items = capItems(items + pageOf(selection) + inner.items);
        } else {
          const inner =
            selection.kind === Kind.INLINE_FRAGMENT ? measure(selection.selectionSet) : fragment(selection.name.value);
          depth = Math.max(depth, inner.depth);
          fields = cap(fields + inner.fields);
          items = capItems(items + inner.items);
        }
      }
      return { depth, fields, items };
    }
    return {
      OperationDefinition(node) {
        const { depth, fields, items } = measure(node.selectionSet);
        const tooComplex = (message: string) =>
          context.reportError(
            new GraphQLError(message, { nodes: node, extensions: { code: 'NS_ERR_GRAPHQL_TOO_COMPLEX' } }),
          );
        if (depth > GRAPHQL_LIMITS.depth)
          tooComplex(`the query is ${depth} levels deep; the limit is ${GRAPHQL_LIMITS.depth}`);
        if (fields > GRAPHQL_LIMITS.fields)
          tooComplex(`the query asks for more than ${GRAPHQL_LIMITS.fields} fields, the limit`);
        if (items > GRAPHQL_LIMITS.listItems)
          tooComplex(
            `the query may answer more than ${GRAPHQL_LIMITS.listItems} list items, the limit (each urls field ` +
              `counts its page: first, ${URL_PAGE.first} by default); ask for smaller pages, or fewer of them`,
          );
      },
    };
  };

interface GraphQLRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

const badRequest = (message: string) => new NodescaleError('NS_ERR_GRAPHQL_BAD_REQUEST', message);

async function readQueryBody(req: IncomingMessage): Promise<string> {
  const body = await readAtMost(req, GRAPHQL_LIMITS.bodyBytes);
  if (body === null)
    throw new NodescaleError(
      'NS_ERR_GRAPHQL_BODY_TOO_LARGE',
      `the request body passes ${GRAPHQL_LIMITS.bodyBytes} bytes`,
    );
  return body.toString('utf8');
}

function jsonObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest(`${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badRequest(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function graphqlRequest(fields: Record<string, unknown>): GraphQLRequest {
  const { query, variables, operationName } = fields;
  if (typeof query !== 'string' || query.trim() === '') throw badRequest('no query: send {"query": "…"}');
  if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables)))
    throw badRequest('variables must be an object');
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string')
    throw badRequest('operationName must be a string');
  return {
    query,
    ...(variables ? { variables: variables as Record<string, unknown> } : {}),
    ...(typeof operationName === 'string' ? { operationName } : {}),
  };
}

async function readRequest(req: IncomingMessage, url: URL): Promise<GraphQLRequest> {
  if (req.method === 'GET') {
    const variables = url.searchParams.get('variables');
    return graphqlRequest({
      query: url.searchParams.get('query'),
      variables: variables === null ? undefined : jsonObject(variables, 'variables'),
      operationName: url.searchParams.get('operationName') ?? undefined,
    });
  }
  if (req.method !== 'POST')
    throw new NodescaleError('NS_ERR_GRAPHQL_METHOD', `${req.method} is not supported: use GET or POST`);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') return graphqlRequest(jsonObject(await readQueryBody(req), 'the body'));
  if (type === 'application/graphql') return { query: await readQueryBody(req) };
  throw new NodescaleError(
    'NS_ERR_GRAPHQL_MEDIA_TYPE',
    `content-type ${JSON.stringify(type || 'none')} is not supported: use application/json or application/graphql`,
  );
}

/**
 * A request that fails as a whole: its errors, each with the code, answered with the code's status (errors.ts).
 * An error's own extensions stay, below the code (graphql-js puts the complexity rule's details there).
 */
function sendErrors(
  res: ServerResponse,
  code: ErrorCode,
  errors: { message: string; extensions?: Record<string, unknown> }[],
  headers: Record<string, string> = {},
): void {
  sendJson(
    res,
    httpStatus(code),
    { errors: errors.map((e) => ({ ...e, extensions: { code, ...e.extensions } })) },
    headers,
  );
}

/** What a 503 (or 504) of a retryable failure tells a client to wait, seconds. */
const RETRY_AFTER_SECONDS = 1;

/**
 * The status of an operation none of whose fields answered, every error a retryable NodescaleError (a full compute
 * queue, a deadline, an unavailable store or broker): its code's status when it is a 5xx, else 503. Null otherwise
 * (a partial answer, or an error a retry will not fix, stays a 200 with its errors).
 */
function retryableFailure(result: ExecutionResult): number | null {
  if (!result.errors?.length) return null;
  const data = result.data;
  if (data != null && Object.values(data).some((value) => value !== null)) return null;
  const originals = result.errors.map((e) => e.originalError);
  if (!originals.every((e) => e instanceof NodescaleError && e.retryable)) return null;
  const status = httpStatus((originals[0] as NodescaleError).code);
  return status >= 500 ? status : 503;
}

/** A resolver's NodescaleError keeps its code; anything else is internal (and its message is not leaked). */
function formatError(error: GraphQLError): Record<string, unknown> {
  const original = error.originalError;
  if (original instanceof NodescaleError)
    return { message: original.message, path: error.path, extensions: { code: original.code } };
  if (original !== undefined && !(original instanceof GraphQLError))
    return { message: 'internal error', path: error.path, extensions: { code: 'NS_ERR_INTERNAL' } };
  return { ...error.toJSON() };
}

export function graphqlHandler(tagger: Tagger) {
  const root = {
    tags: ({ url }: { url: string }) => tagger.tags(url),
    urls: ({ tag, first, after }: { tag: string; first?: number | null; after?: string | null }) =>
      tagger.urls(tag, { ...(first == null ? {} : { first }), ...(after == null ? {} : { after }) }),
    health: async () => {
      const size = await tagger.store.size();
      return {
        status: tagger.store.status(),
        compute: tagger.compute.transport,
        store: tagger.store.kind,
        indexedUrls: size?.urls ?? null,
        indexedTags: size?.tags ?? null,
        pid: process.pid,
      };
    },
  };
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    let request: GraphQLRequest;
    try {
      request = await readRequest(req, url);
    } catch (error) {
      if (!(error instanceof NodescaleError)) throw error;
      return sendErrors(
        res,
        error.code,
        [{ message: error.message }],
        error.code === 'NS_ERR_GRAPHQL_METHOD' ? { allow: 'GET, POST' } : {},
      );
    }
    if (request.query.length > GRAPHQL_LIMITS.queryChars) {
      return sendErrors(res, 'NS_ERR_GRAPHQL_TOO_COMPLEX', [
        { message: `the query is ${request.query.length} characters; the limit is ${GRAPHQL_LIMITS.queryChars}` },
      ]);
    }
    let document: DocumentNode;
    try {
      document = parse(request.query, { maxTokens: 2000 });
    } catch (error) {
      return sendErrors(res, 'NS_ERR_GRAPHQL_INVALID', [(error as GraphQLError).toJSON()]);
    }
    const invalid = validate(schema, document, [...specifiedRules, complexityRule(request.variables ?? {})]);
    if (invalid.length > 0) {
      return sendErrors(
        res,
        'NS_ERR_GRAPHQL_INVALID',
        invalid.map((e) => ({ ...e.toJSON(), extensions: e.extensions })),
      );
    }
    const result = await execute({
      schema,
      document,
      rootValue: root,
      variableValues: request.variables ?? null,
      operationName: request.operationName ?? null,
    });
    if (result.errors && result.data == null && result.errors.every((e) => e.path === undefined)) {
      // Errors of the request, not of a field (no path): variables that do not fit the operation, an unknown operation
      // name, a mutation or subscription (the schema has neither). graphql-js answers them with data undefined or null.
      return sendErrors(
        res,
        'NS_ERR_GRAPHQL_INVALID',
        result.errors.map((e) => e.toJSON()),
      );
    }
    const body = { data: result.data, ...(result.errors ? { errors: result.errors.map(formatError) } : {}) };
    const retry = retryableFailure(result);
    // The whole operation failed for a reason that passes (overload, a dependency away): a balancer and a client see
    // it in the status, as for any HTTP API, and know when to try again. The GraphQL-over-HTTP media type allows it.
    if (retry !== null) return sendJson(res, retry, body, { 'retry-after': String(RETRY_AFTER_SECONDS) });
    sendJson(res, 200, body);
  };
}
