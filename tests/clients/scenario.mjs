// The steps every client library takes against the live server, through an adapter that
// calls the library's own API for each one; the results are printed as one JSON object for
// tests/test_client_libraries.py to assert on (the Python libraries run the same steps there).

const PATIENTS = 5;
const PAGE_SIZE = 2;

function patient(family, given) {
  return { resourceType: 'Patient', name: [{ family, given: [given] }] };
}

// "RelatedPerson/abc/_history/1" (relative or absolute) -> "abc"
function idIn(location, type) {
  const parts = location.split('/');
  return parts[parts.lastIndexOf(type) + 1];
}

function bundle(type, entry) {
  return { resourceType: 'Bundle', type, entry };
}

export async function run(library, family) {
  const created = [];
  for (let n = 0; n < PATIENTS; n++) {
    created.push(await library.create(patient(family, `Given${n}`)));
  }
  const [first] = created;
  const read = await library.read('Patient', first.id);
  const updated = await library.update({ ...read, name: [{ family, given: ['Ada', 'Grace'] }] });
  const pages = await library.searchPages('Patient', { family, _count: String(PAGE_SIZE) });

  const transaction = await library.transaction(
    bundle('transaction', [
      {
        fullUrl: 'urn:uuid:0b7b6e38-5d6b-4a39-9a0e-1f1d8c1a2b3c',
        resource: patient(`T${family}`, 'Tx'),
        request: { method: 'POST', url: 'Patient' },
      },
      {
        resource: {
          resourceType: 'RelatedPerson',
          patient: { reference: 'urn:uuid:0b7b6e38-5d6b-4a39-9a0e-1f1d8c1a2b3c' },
          name: [{ family: `T${family}` }],
        },
        request: { method: 'POST', url: 'RelatedPerson' },
      },
    ]),
  );
  const batch = await library.batch(
    bundle('batch', [
      { request: { method: 'GET', url: `Patient?family=${family}&_count=100` } },
      { request: { method: 'GET', url: `Patient/${first.id}` } },
    ]),
  );
  const related = await library.read(
    'RelatedPerson',
    idIn(transaction.entry[1].response.location, 'RelatedPerson'),
  );
  await library.remove('Patient', first.id);

  const [searched, readBack] = batch.entry;
  return {
    scope: library.scope,
    created: created.map((r) => r.id),
    read: { id: read.id, family: read.name[0].family },
    updated: { version: updated.meta.versionId, given: updated.name[0].given },
    first_page: pages[0].length,
    found: pages.flat().map((r) => r.id),
    transaction: {
      statuses: transaction.entry.map((e) => e.response.status),
      patient: transaction.entry[0].response.location,
      related_patient: related.patient.reference,
    },
    batch: {
      statuses: batch.entry.map((e) => e.response.status),
      found: (searched.resource?.entry ?? []).map((e) => e.resource.id),
      read: readBack.resource?.id ?? null,
    },
    deleted_status: await library.readStatus('Patient', first.id),
  };
}

export function main(connect) {
  const { FHIR_BASE, CLIENT_ID, CLIENT_SECRET, FAMILY } = process.env;
  connect({ base: FHIR_BASE, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    .then((library) => run(library, FAMILY))
    .then((results) => console.log(JSON.stringify(results)))
    .catch((error) => {
      console.error(error?.stack ?? error);
      console.error(JSON.stringify(error?.outcome ?? error?.response?.data ?? null));
      process.exit(1);
    });
}
