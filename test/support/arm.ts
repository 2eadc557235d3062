/**
 * A deployment in memory: evaluates a compiled ARM template (what `bicep build` writes) with a
 * set of parameter values, the way Azure Resource Manager would, and returns every resource it
 * would deploy, with its properties evaluated, and the template's outputs. Nested deployments
 * (Bicep modules, inner expression scope) are followed, and a module output is the value the
 * module's template computes.
 *
 * What only Azure knows at deployment time (a property of a deployed resource, read with
 * reference()) stays symbolic: `runtimeRef(resourceId, 'primaryEndpoints', 'blob')` is the
 * string that stands for it, so a test can say which resource a value comes from.
 *
 * It models the template functions these templates use, and fails on any other, naming it, so a
 * template that starts using a new function fails loudly rather than being read wrongly.
 * uniqueString() and guid() are deterministic stand-ins (not Azure's hash), and the deployment's
 * subscription, tenant and name are the caller's.
 */
import { createHash } from 'node:crypto';

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/** A property of a deployed resource, known only when Azure deploys it. */
class RuntimeValue {
  constructor(
    readonly resourceId: string,
    readonly path: readonly string[],
  ) {}
  at(key: string): RuntimeValue {
    return new RuntimeValue(this.resourceId, [...this.path, key]);
  }
  toString(): string {
    return runtimeRef(this.resourceId, ...this.path);
  }
}

/** The string that stands for a deployed resource's property (the path under `properties`). */
export function runtimeRef(resourceId: string, ...path: string[]): string {
  return `⟪${resourceId}|${path.join('.')}⟫`;
}

const RUNTIME_REF = /⟪([^|⟫]+)\|([^⟫]*)⟫/g;

/** Replaces each runtime reference in a string with what `resolve` says the property holds. */
export function resolveRuntimeRefs(text: string, resolve: (resourceId: string, path: string) => string): string {
  return text.replace(RUNTIME_REF, (_, resourceId: string, path: string) => resolve(resourceId, path));
}

type Lambda = { readonly lambda: readonly string[]; readonly body: Ast; readonly scope: Scope };

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

type Ast =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly Ast[] }
  | { readonly kind: 'property'; readonly target: Ast; readonly name: string }
  | { readonly kind: 'index'; readonly target: Ast; readonly index: Ast };

/** Parses the inside of a template expression: `format('{0}', parameters('x')).y[0]`. */
export function parseExpression(source: string): Ast {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`ARM expression: ${what} at ${at} in [${source}]`);
  };
  const skip = () => {
    while (at < source.length && /\s/.test(source[at]!)) at++;
  };
  const expect = (char: string) => {
    skip();
    if (source[at] !== char) fail(`expected "${char}"`);
    at++;
  };
  const primary = (): Ast => {
    skip();
    const char = source[at];
    if (char === "'") {
      let value = '';
      at++;
      for (;;) {
        if (at >= source.length) fail('unterminated string');
        if (source[at] === "'") {
          if (source[at + 1] === "'") {
            value += "'";
            at += 2;
            continue;
          }
          at++;
          return { kind: 'string', value };
        }
        value += source[at++];
      }
    }
    const number = /^-?\d+/.exec(source.slice(at));
    if (number) {
      at += number[0].length;
      return { kind: 'number', value: Number(number[0]) };
    }
    const name = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(source.slice(at));
    if (!name) return fail('expected a string, a number or a function call');
    at += name[0].length;
    expect('(');
    const args: Ast[] = [];
    skip();
    if (source[at] === ')') at++;
    else {
      for (;;) {
        args.push(expression());
        skip();
        if (source[at] === ',') at++;
        else if (source[at] === ')') {
          at++;
          break;
        } else fail('expected "," or ")"');
      }
    }
    return { kind: 'call', name: name[0], args };
  };
  const expression = (): Ast => {
    let node = primary();
    for (;;) {
      skip();
      if (source[at] === '.') {
        at++;
        skip();
        const name = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(source.slice(at));
        if (!name) fail('expected a property name');
        at += name![0].length;
        node = { kind: 'property', target: node, name: name![0] };
      } else if (source[at] === '[') {
        at++;
        const index = expression();
        expect(']');
        node = { kind: 'index', target: node, index };
      } else return node;
    }
  };
  const ast = expression();
  skip();
  if (at !== source.length) fail('unexpected text');
  return ast;
}

/** Whether a JSON string is a template expression, and its source. */
function expressionSource(value: string): string | undefined {
  return value.startsWith('[') && !value.startsWith('[[') && value.endsWith(']') ? value.slice(1, -1) : undefined;
}

/** Every function an expression in the template calls, with how often (nested templates included). */
export function functionsCalled(template: unknown): Map<string, number> {
  const counts = new Map<string, number>();
  const visit = (ast: Ast) => {
    if (ast.kind === 'call') {
      counts.set(ast.name, (counts.get(ast.name) ?? 0) + 1);
      ast.args.forEach(visit);
    } else if (ast.kind === 'property') visit(ast.target);
    else if (ast.kind === 'index') {
      visit(ast.target);
      visit(ast.index);
    }
  };
  const walk = (value: unknown) => {
    if (typeof value === 'string') {
      const source = expressionSource(value);
      if (source !== undefined) visit(parseExpression(source));
    } else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(template);
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Templates and deployments
// ---------------------------------------------------------------------------------------------

interface TemplateParameter {
  readonly type: string;
  readonly defaultValue?: unknown;
  readonly allowedValues?: readonly unknown[];
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minValue?: number;
  readonly maxValue?: number;
}

interface TemplateResource {
  readonly type: string;
  readonly apiVersion?: string;
  readonly name: string;
  readonly condition?: unknown;
  readonly existing?: boolean;
  readonly scope?: string;
  readonly copy?: unknown;
  readonly subscriptionId?: string;
  readonly resourceGroup?: string;
  readonly properties?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

export interface Template {
  readonly $schema: string;
  readonly languageVersion?: string;
  readonly parameters?: Record<string, TemplateParameter>;
  readonly variables?: Record<string, unknown>;
  readonly resources: readonly TemplateResource[] | Record<string, TemplateResource>;
  readonly outputs?: Record<string, { readonly type: string; readonly value: unknown }>;
}

/** A resource the deployment creates or updates, everything in it evaluated. */
export interface DeployedResource {
  readonly id: string;
  readonly type: string;
  readonly name: string;
  /** The module path that deploys it: `main`, `main/function-app`. */
  readonly deployment: string;
  /** The resource as sent to Azure: properties, tags, identity, sku, kind, location, scope. */
  readonly body: Record<string, unknown>;
}

export interface Deployment {
  readonly resources: readonly DeployedResource[];
  readonly outputs: Readonly<Record<string, unknown>>;
}

export interface DeploymentContext {
  readonly subscriptionId: string;
  readonly tenantId: string;
  /** Name of the top-level deployment (azd: the environment name and a timestamp). */
  readonly deploymentName: string;
  /** Region of the top-level deployment, for deployment().location. */
  readonly location: string;
}

interface Scope {
  readonly template: Template;
  readonly path: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly variables: Map<string, unknown>;
  readonly subscriptionId: string;
  readonly resourceGroup?: string;
  readonly context: DeploymentContext;
  readonly deployed: DeployedResource[];
  /** The template's resources: id by index (array form) or symbolic name (languageVersion 2.0). */
  readonly resourceIds: Map<string, string>;
  /** Nested deployments by resource ID, evaluated on first use. */
  readonly nested: Map<string, () => Deployment>;
  readonly copyIndexes: ReadonlyMap<string, number>;
  readonly lambdaVariables: ReadonlyMap<string, unknown>;
}

/** Deploys a compiled template (subscription scope, like infra/main.json) with these parameters. */
export function deploy(template: Template, parameters: Readonly<Record<string, unknown>>, context: DeploymentContext): Deployment {
  const deployed: DeployedResource[] = [];
  const outputs = deployTemplate(template, parameters, { path: 'main', subscriptionId: context.subscriptionId, context, deployed });
  return { resources: deployed, outputs };
}

function deployTemplate(
  template: Template,
  given: Readonly<Record<string, unknown>>,
  where: { path: string; subscriptionId: string; resourceGroup?: string; context: DeploymentContext; deployed: DeployedResource[] },
): Record<string, unknown> {
  for (const name of Object.keys(given)) {
    if (!template.parameters?.[name]) throw new Error(`${where.path}: the template has no parameter ${name}`);
  }
  const parameters: Record<string, unknown> = {};
  const scope: Scope = {
    template,
    path: where.path,
    parameters,
    variables: new Map(),
    subscriptionId: where.subscriptionId,
    ...(where.resourceGroup === undefined ? {} : { resourceGroup: where.resourceGroup }),
    context: where.context,
    deployed: where.deployed,
    resourceIds: new Map(),
    nested: new Map(),
    copyIndexes: new Map(),
    lambdaVariables: new Map(),
  };
  for (const [name, declared] of Object.entries(template.parameters ?? {})) {
    const value = name in given ? given[name] : declared.defaultValue === undefined ? undefined : evaluate(declared.defaultValue, scope);
    if (value === undefined) throw new Error(`${where.path}: parameter ${name} has no value and no default`);
    parameters[name] = validateParameter(`${where.path}: parameter ${name}`, declared, value);
  }

  const entries: Array<[string, TemplateResource]> = Array.isArray(template.resources)
    ? template.resources.map((resource, index) => [String(index), resource])
    : Object.entries(template.resources);
  const included = entries.filter(([, resource]) => resource.condition === undefined || truthy(evaluate(resource.condition, scope)));
  const excluded = entries.filter(([key]) => !included.some(([k]) => k === key));
  // IDs first: a resource may refer to another declared after it.
  for (const [key, resource] of [...included, ...excluded]) {
    if (resource.copy !== undefined) throw new Error(`${where.path}: resource loops (copy) are not modelled (${resource.type})`);
    scope.resourceIds.set(key, resourceIdOf(resource, scope));
  }
  for (const [key, resource] of included) {
    if (resource.existing) continue;
    const id = scope.resourceIds.get(key)!;
    if (resource.type === 'Microsoft.Resources/deployments') {
      let result: Deployment | undefined;
      scope.nested.set(id.toLowerCase(), () => (result ??= deployNested(resource, scope)));
    }
  }
  for (const [key, resource] of included) {
    if (resource.existing) continue;
    const id = scope.resourceIds.get(key)!;
    if (resource.type === 'Microsoft.Resources/deployments') {
      scope.nested.get(id.toLowerCase())!();
      continue;
    }
    const body: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(resource)) {
      if (['type', 'apiVersion', 'name', 'condition', 'existing', 'dependsOn', 'comments', 'copy'].includes(field)) continue;
      body[field] = evaluate(value, scope);
    }
    where.deployed.push(finish({ id, type: resource.type, name: String(evaluate(resource.name, scope)), deployment: where.path, body }) as DeployedResource);
  }

  const outputs: Record<string, unknown> = {};
  for (const [name, output] of Object.entries(template.outputs ?? {})) outputs[name] = evaluate(output.value, scope);
  return outputs;
}

function deployNested(resource: TemplateResource, outer: Scope): Deployment {
  const properties = resource.properties as
    { expressionEvaluationOptions?: { scope?: string }; parameters?: Record<string, { value: unknown }>; template?: Template } | undefined;
  const name = String(evaluate(resource.name, outer));
  if (properties?.expressionEvaluationOptions?.scope !== 'inner' || !properties.template) {
    throw new Error(`${outer.path}: nested deployment ${name} is not an inner-scope template (a Bicep module); not modelled`);
  }
  const given: Record<string, unknown> = {};
  for (const [param, { value }] of Object.entries(properties.parameters ?? {})) given[param] = evaluate(value, outer);
  const subscriptionId = resource.subscriptionId === undefined ? outer.subscriptionId : String(evaluate(resource.subscriptionId, outer));
  const resourceGroup = resource.resourceGroup === undefined ? outer.resourceGroup : String(evaluate(resource.resourceGroup, outer));
  const start = outer.deployed.length;
  const outputs = deployTemplate(properties.template, given, {
    path: `${outer.path}/${name}`,
    subscriptionId,
    ...(resourceGroup === undefined ? {} : { resourceGroup }),
    context: outer.context,
    deployed: outer.deployed,
  });
  return { resources: outer.deployed.slice(start), outputs: finish(outputs) as Record<string, unknown> };
}

function resourceIdOf(resource: TemplateResource, scope: Scope): string {
  const names = String(evaluate(resource.name, scope)).split('/');
  if (resource.scope !== undefined) {
    const target = String(evaluate(resource.scope, scope));
    return extensionId(scope.resourceIds.get(target) ?? target, resource.type, names);
  }
  if (resource.type === 'Microsoft.Resources/deployments') {
    const subscriptionId = resource.subscriptionId === undefined ? scope.subscriptionId : String(evaluate(resource.subscriptionId, scope));
    const resourceGroup = resource.resourceGroup === undefined ? scope.resourceGroup : String(evaluate(resource.resourceGroup, scope));
    return qualifiedId(
      resourceGroup === undefined ? `/subscriptions/${subscriptionId}` : `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`,
      resource.type,
      names,
    );
  }
  return qualifiedId(scopeId(scope), resource.type, names);
}

function scopeId(scope: Scope): string {
  return scope.resourceGroup === undefined
    ? `/subscriptions/${scope.subscriptionId}`
    : `/subscriptions/${scope.subscriptionId}/resourceGroups/${scope.resourceGroup}`;
}

/** `/providers/Microsoft.Web/sites/app/config/appsettings` under a scope; resource groups are special. */
function qualifiedId(base: string, type: string, names: readonly string[]): string {
  if (type.toLowerCase() === 'microsoft.resources/resourcegroups') return `${base}/resourceGroups/${names.join('/')}`;
  const [namespace, ...types] = type.split('/');
  if (types.length !== names.length) throw new Error(`resource type ${type} needs ${types.length} name segments, got ${names.join('/')}`);
  return `${base}/providers/${namespace}/${types.map((t, i) => `${t}/${names[i]}`).join('/')}`;
}

function extensionId(target: string, type: string, names: readonly string[]): string {
  return qualifiedId(target, type, names);
}

function validateParameter(label: string, declared: TemplateParameter, raw: unknown): unknown {
  const type = declared.type.toLowerCase();
  const value = raw;
  // Known only at deployment time: Azure checks it then.
  if (value instanceof RuntimeValue) return value;
  const kind = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value === 'number' ? 'int' : typeof value;
  const expected = { string: 'string', securestring: 'string', int: 'int', bool: 'boolean', object: 'object', secureobject: 'object', array: 'array' }[type];
  if (expected === undefined) throw new Error(`${label}: type ${declared.type} is not modelled`);
  if (kind !== expected || (kind === 'int' && !Number.isInteger(value)))
    throw new Error(`${label}: expected a value of type ${declared.type}, got ${JSON.stringify(value)}`);
  if (declared.allowedValues && !declared.allowedValues.some((allowed) => deepEqual(allowed, value))) {
    throw new Error(`${label}: ${JSON.stringify(value)} is not one of the allowed values ${JSON.stringify(declared.allowedValues)}`);
  }
  const length = typeof value === 'string' || Array.isArray(value) ? value.length : undefined;
  if (length !== undefined && declared.minLength !== undefined && length < declared.minLength)
    throw new Error(`${label}: ${JSON.stringify(value)} is shorter than ${declared.minLength}`);
  if (length !== undefined && declared.maxLength !== undefined && length > declared.maxLength)
    throw new Error(`${label}: ${JSON.stringify(value)} is longer than ${declared.maxLength}`);
  if (typeof value === 'number' && declared.minValue !== undefined && value < declared.minValue)
    throw new Error(`${label}: ${value} is less than ${declared.minValue}`);
  if (typeof value === 'number' && declared.maxValue !== undefined && value > declared.maxValue)
    throw new Error(`${label}: ${value} is more than ${declared.maxValue}`);
  return value;
}

/** Runtime values become their reference strings in what a deployment returns. */
function finish(value: unknown): unknown {
  if (value instanceof RuntimeValue) return value.toString();
  if (Array.isArray(value)) return value.map(finish);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, finish(v)]));
  return value;
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/** Evaluates a template value: expressions in strings, property loops (`copy`) in objects. */
function evaluate(value: unknown, scope: Scope): unknown {
  if (typeof value === 'string') {
    const source = expressionSource(value);
    if (source !== undefined) return evaluateAst(parseExpression(source), scope);
    return value.startsWith('[[') ? value.slice(1) : value;
  }
  if (Array.isArray(value)) return value.map((item) => evaluate(item, scope));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (key === 'copy' && Array.isArray(item)) {
        for (const loop of item as Array<{ name: string; count: unknown; input: unknown }>) {
          const count = Number(evaluate(loop.count, scope));
          out[loop.name] = Array.from({ length: count }, (_, i) =>
            evaluate(loop.input, { ...scope, copyIndexes: new Map([...scope.copyIndexes, [loop.name, i]]) }),
          );
        }
      } else {
        // Property names can be expressions too.
        const name = expressionSource(key) === undefined ? key : asString(evaluate(key, scope));
        out[name] = evaluate(item, scope);
      }
    }
    return out;
  }
  return value;
}

function variable(name: string, scope: Scope): unknown {
  if (!scope.variables.has(name)) {
    const declared = scope.template.variables ?? {};
    const loop = Array.isArray(declared.copy)
      ? (declared.copy as Array<{ name: string; count: unknown; input: unknown }>).find((c) => c.name === name)
      : undefined;
    if (loop) {
      const count = Number(evaluate(loop.count, scope));
      scope.variables.set(
        name,
        Array.from({ length: count }, (_, i) => evaluate(loop.input, { ...scope, copyIndexes: new Map([...scope.copyIndexes, [name, i]]) })),
      );
    } else {
      if (!(name in declared) || name === 'copy') throw new Error(`${scope.path}: variables('${name}') is not declared`);
      scope.variables.set(name, evaluate(declared[name], scope));
    }
  }
  return scope.variables.get(name);
}

function member(target: unknown, key: string | number, where: string): unknown {
  if (target instanceof RuntimeValue) return target.at(String(key));
  if (Array.isArray(target) && typeof key === 'number') {
    if (key < 0 || key >= target.length) throw new Error(`${where}: index ${key} is out of range`);
    return target[key];
  }
  if (target && typeof target === 'object') {
    const record = target as Record<string, unknown>;
    const name = String(key);
    // ARM property names are case-insensitive.
    const found = name in record ? name : Object.keys(record).find((k) => k.toLowerCase() === name.toLowerCase());
    if (found === undefined) throw new Error(`${where}: no property ${name} in ${JSON.stringify(finish(target)).slice(0, 200)}`);
    return record[found];
  }
  throw new Error(`${where}: cannot read ${String(key)} of ${JSON.stringify(target)}`);
}

function evaluateAst(ast: Ast, scope: Scope): unknown {
  switch (ast.kind) {
    case 'string':
    case 'number':
      return ast.value;
    case 'property':
      return member(evaluateAst(ast.target, scope), ast.name, scope.path);
    case 'index': {
      const index = evaluateAst(ast.index, scope);
      return member(evaluateAst(ast.target, scope), typeof index === 'number' ? index : String(index), scope.path);
    }
    case 'call':
      return call(ast.name, ast.args, scope);
  }
}

function asString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof RuntimeValue) return value.toString();
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return String(value);
  return JSON.stringify(finish(value));
}

function truthy(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw new Error(`expected a bool, got ${JSON.stringify(value)}`);
}

function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value === 'string' || Array.isArray(value)) return value.length === 0;
  if (value instanceof RuntimeValue) return false;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

/** equals(): exact, strings included (Bicep's `=~` compiles to equals(toLower(...), toLower(...))). */
function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(finish(a)) === JSON.stringify(finish(b));
}

/** union() of objects: later values win, nested objects merged. */
function mergeObjects(objects: readonly Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const object of objects) {
    for (const [key, value] of Object.entries(object)) {
      const before = out[key];
      const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RuntimeValue);
      out[key] = isObject(before) && isObject(value) ? mergeObjects([before, value]) : value;
    }
  }
  return out;
}

/** A deterministic stand-in for uniqueString(): 13 lower-case base-32 characters. */
function stableHash(parts: readonly string[], length: number): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  return Array.from({ length }, (_, i) => alphabet[digest[i]! % 32]).join('');
}

function stableGuid(parts: readonly string[]): string {
  const hex = createHash('sha1').update(parts.join('\u0000').toLowerCase()).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** resourceId's optional leading subscription and resource group: the type is the first "Namespace/type". */
function splitResourceIdArgs(args: readonly unknown[]): { prefix: string[]; type: string; names: string[] } {
  const strings = args.map(asString);
  const typeAt = strings.findIndex((arg) => /^[A-Za-z0-9]+\.[A-Za-z0-9.]+\/[A-Za-z]/.test(arg));
  if (typeAt < 0) throw new Error(`resourceId(${strings.join(', ')}): no resource type`);
  return { prefix: strings.slice(0, typeAt), type: strings[typeAt]!, names: strings.slice(typeAt + 1) };
}

function call(name: string, args: readonly Ast[], scope: Scope): unknown {
  const fn = name.toLowerCase();
  // Special forms: arguments evaluated lazily.
  if (fn === 'if') return truthy(evaluateAst(args[0]!, scope)) ? evaluateAst(args[1]!, scope) : evaluateAst(args[2]!, scope);
  if (fn === 'and') return args.every((arg) => truthy(evaluateAst(arg, scope)));
  if (fn === 'or') return args.some((arg) => truthy(evaluateAst(arg, scope)));
  if (fn === 'lambda') {
    const names = args.slice(0, -1).map((arg) => asString(evaluateAst(arg, scope)));
    return { lambda: names, body: args[args.length - 1]!, scope } satisfies Lambda;
  }
  const values = args.map((arg) => evaluateAst(arg, scope));
  const [a, b, c] = values;
  const apply = (fnValue: unknown, ...lambdaArgs: unknown[]): unknown => {
    const lambda = fnValue as Lambda;
    if (!lambda || !Array.isArray(lambda.lambda)) throw new Error(`${name}(): expected a lambda`);
    const bound = new Map<string, unknown>(lambda.scope.lambdaVariables);
    lambda.lambda.forEach((variableName: string, i) => bound.set(variableName, lambdaArgs[i]));
    return evaluateAst(lambda.body, { ...lambda.scope, lambdaVariables: bound });
  };
  switch (fn) {
    case 'parameters': {
      const key = asString(a);
      if (!(key in scope.parameters)) throw new Error(`${scope.path}: parameters('${key}') is not declared`);
      return scope.parameters[key];
    }
    case 'variables':
      return variable(asString(a), scope);
    case 'lambdavariables': {
      const key = asString(a);
      if (!scope.lambdaVariables.has(key)) throw new Error(`${scope.path}: lambdaVariables('${key}') is not bound`);
      return scope.lambdaVariables.get(key);
    }
    case 'copyindex': {
      const loop = typeof a === 'string' ? a : undefined;
      const offset = typeof a === 'number' ? a : typeof b === 'number' ? b : 0;
      const index = loop === undefined ? [...scope.copyIndexes.values()].pop() : scope.copyIndexes.get(loop);
      if (index === undefined) throw new Error(`${scope.path}: copyIndex(${loop ?? ''}) outside its loop`);
      return index + offset;
    }
    case 'true':
      return true;
    case 'false':
      return false;
    case 'null':
      return null;
    case 'not':
      return !truthy(a);
    case 'equals':
      return deepEqual(a, b);
    case 'empty':
      return isEmpty(a);
    case 'length':
      if (typeof a === 'string' || Array.isArray(a)) return a.length;
      if (a && typeof a === 'object') return Object.keys(a).length;
      throw new Error(`length(${JSON.stringify(a)})`);
    case 'contains':
      if (typeof a === 'string') return a.includes(asString(b));
      if (Array.isArray(a)) return a.some((item) => deepEqual(item, b));
      return Object.keys(a as object).some((k) => k.toLowerCase() === asString(b).toLowerCase());
    case 'startswith':
      return asString(a).toLowerCase().startsWith(asString(b).toLowerCase());
    case 'endswith':
      return asString(a).toLowerCase().endsWith(asString(b).toLowerCase());
    case 'format':
      return asString(a).replace(/\{\{|\}\}|\{(\d+)(?::[^}]*)?\}/g, (match, index?: string) =>
        match === '{{' ? '{' : match === '}}' ? '}' : asString(values[Number(index) + 1]),
      );
    case 'concat':
      return values.every(Array.isArray) ? values.flat() : values.map(asString).join('');
    case 'tolower':
      return asString(a).toLowerCase();
    case 'toupper':
      return asString(a).toUpperCase();
    case 'trim':
      return asString(a).trim();
    case 'split': {
      const delimiters = Array.isArray(b) ? b.map(asString) : [asString(b)];
      return delimiters.reduce<string[]>((parts, delimiter) => parts.flatMap((part) => part.split(delimiter)), [asString(a)]);
    }
    case 'replace':
      return asString(a).split(asString(b)).join(asString(c));
    case 'substring':
      return asString(a).substring(Number(b), c === undefined ? undefined : Number(b) + Number(c));
    case 'string':
      return asString(a);
    case 'int':
      return Number.parseInt(asString(a), 10);
    case 'bool':
      return truthy(a);
    case 'json':
      return JSON.parse(asString(a));
    case 'createarray':
      return values;
    case 'createobject': {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < values.length; i += 2) out[asString(values[i])] = values[i + 1];
      return out;
    }
    case 'union':
      return values.every(Array.isArray)
        ? [...new Set(values.flat().map((v) => JSON.stringify(v)))].map((v) => JSON.parse(v) as unknown)
        : mergeObjects(values as Record<string, unknown>[]);
    case 'coalesce':
      return values.find((v) => v !== null && v !== undefined) ?? null;
    case 'first':
      return typeof a === 'string' ? a[0] : (a as unknown[])[0];
    case 'last':
      return typeof a === 'string' ? a[a.length - 1] : (a as unknown[])[(a as unknown[]).length - 1];
    case 'filter':
      return (a as unknown[]).filter((item, i) => truthy(apply(b, item, i)));
    case 'map':
      return (a as unknown[]).map((item, i) => apply(b, item, i));
    case 'subscription':
      return {
        id: `/subscriptions/${scope.subscriptionId}`,
        subscriptionId: scope.subscriptionId,
        tenantId: scope.context.tenantId,
        displayName: 'subscription under test',
      };
    case 'tenant':
      return { tenantId: scope.context.tenantId, countryCode: 'US', displayName: 'tenant under test' };
    case 'resourcegroup':
      if (scope.resourceGroup === undefined) throw new Error(`${scope.path}: resourceGroup() in a subscription-scope template`);
      return { id: scopeId(scope), name: scope.resourceGroup, location: new RuntimeValue(scopeId(scope), ['(location)']) };
    case 'deployment':
      return { name: scope.path === 'main' ? scope.context.deploymentName : scope.path.split('/').pop(), location: scope.context.location };
    case 'environment':
      return {
        name: 'AzureCloud',
        resourceManager: 'https://management.azure.com/',
        authentication: { loginEndpoint: 'https://login.microsoftonline.com/' },
        suffixes: { storage: 'core.windows.net', keyvaultDns: '.vault.azure.net' },
      };
    case 'uniquestring':
      return stableHash(values.map(asString), 13);
    case 'guid':
      return stableGuid(values.map(asString));
    case 'resourceid': {
      const { prefix, type, names } = splitResourceIdArgs(values);
      const subscriptionId = prefix.length === 2 ? prefix[0]! : scope.subscriptionId;
      const resourceGroup = prefix.length === 2 ? prefix[1] : prefix.length === 1 ? prefix[0] : scope.resourceGroup;
      if (resourceGroup === undefined) throw new Error(`${scope.path}: resourceId(${type}) needs a resource group at subscription scope`);
      return qualifiedId(`/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`, type, names);
    }
    case 'subscriptionresourceid': {
      const { prefix, type, names } = splitResourceIdArgs(values);
      return qualifiedId(`/subscriptions/${prefix[0] ?? scope.subscriptionId}`, type, names);
    }
    case 'tenantresourceid': {
      const { type, names } = splitResourceIdArgs(values);
      return qualifiedId('', type, names);
    }
    case 'extensionresourceid': {
      const { type, names } = splitResourceIdArgs(values.slice(1));
      return extensionId(asString(a), type, names);
    }
    case 'reference': {
      const target = asString(a);
      const id = scope.resourceIds.get(target) ?? target;
      const full = typeof c === 'string' && c.toLowerCase() === 'full';
      const nested = scope.nested.get(id.toLowerCase());
      if (nested) {
        const outputs = Object.fromEntries(Object.entries(nested().outputs).map(([k, v]) => [k, { value: v }]));
        return full ? { properties: { outputs } } : { outputs };
      }
      return new RuntimeValue(id, full ? ['(full)'] : []);
    }
    default:
      throw new Error(`${scope.path}: the template function ${name}() is not modelled by test/support/arm.ts`);
  }
}

// ---------------------------------------------------------------------------------------------
// azd: infra/main.parameters.json
// ---------------------------------------------------------------------------------------------

/**
 * The parameter values `azd provision` passes for a parameters file and an environment, as azd
 * reads the file: `${NAME}` and `${NAME=default}` are replaced by the environment's value (the
 * default when NAME is not set; an empty string when there is no default); a string that is now
 * empty counts as not given when the parameter's default is empty too, and an int or bool given
 * as a string is converted. A parameter left without a value and without a default is one azd
 * would prompt for: that throws here.
 */
export function azdParameters(parametersFile: string, env: Readonly<Record<string, string>>, template: Template): Record<string, unknown> {
  const substituted = parametersFile.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^}]*))?\}/g,
    (_, variableName: string, fallback?: string) => env[variableName] ?? fallback ?? '',
  );
  const file = JSON.parse(substituted) as { parameters: Record<string, { value: unknown }> };
  const values: Record<string, unknown> = {};
  for (const [name, { value }] of Object.entries(file.parameters)) {
    const declared = template.parameters?.[name];
    if (!declared) throw new Error(`main.parameters.json: the template has no parameter ${name}`);
    const type = declared.type.toLowerCase();
    if (type === 'int' && typeof value === 'string') {
      if (/^-?\d+$/.test(value)) values[name] = Number(value);
    } else if (type === 'bool' && typeof value === 'string') {
      if (/^(true|false)$/i.test(value)) values[name] = value.toLowerCase() === 'true';
    } else if (type === 'string' && typeof value === 'string') {
      if (value !== '' || (typeof declared.defaultValue === 'string' && declared.defaultValue !== '')) values[name] = value;
    } else values[name] = value;
  }
  for (const [name, declared] of Object.entries(template.parameters ?? {})) {
    if (!(name in values) && declared.defaultValue === undefined) throw new Error(`azd would prompt for parameter ${name}: it has no value and no default`);
  }
  return values;
}
