// @medplum/core's MedplumClient, as its documentation uses it for a backend service: the
// client credentials flow of startClientLogin (client_secret_post), then its FHIR methods.
import { MedplumClient } from '@medplum/core';
import { main } from './scenario.mjs';

main(async ({ base, clientId, clientSecret }) => {
  const root = new URL(base);
  const medplum = new MedplumClient({
    baseUrl: `${root.origin}/`,
    fhirUrlPath: root.pathname.replace(/^\/|\/$/g, ''),
    tokenUrl: `${root.origin}/auth/token`,
  });
  await medplum.startClientLogin(clientId, clientSecret);
  const token = medplum.getAccessToken();
  const scope = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).scope;
  return {
    scope,
    create: (resource) => medplum.createResource(resource),
    read: (type, id) => medplum.readResource(type, id),
    update: (resource) => medplum.updateResource(resource),
    remove: (type, id) => medplum.deleteResource(type, id),
    searchPages: async (type, params) => {
      const pages = [];
      for await (const page of medplum.searchResourcePages(type, params)) {
        pages.push([...page]);
      }
      return pages;
    },
    transaction: (bundle) => medplum.executeBatch(bundle),
    batch: (bundle) => medplum.executeBatch(bundle),
    readStatus: async (type, id) => {
      // MedplumClient's errors carry the OperationOutcome, not the status: ask HTTP itself
      const response = await fetch(medplum.fhirUrl(type, id), {
        headers: { Authorization: `Bearer ${token}` },
      });
      return response.status;
    },
  };
});
