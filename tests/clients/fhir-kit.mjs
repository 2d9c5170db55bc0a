// fhir-kit-client, as its documentation pairs it with simple-oauth2: the token endpoint found
// through the library's smartAuthMetadata, a client credentials token (client_secret_basic,
// simple-oauth2's default) for the two types used, then the library's FHIR methods.
import { Client } from 'fhir-kit-client';
import { ClientCredentials } from 'simple-oauth2';
import { main } from './scenario.mjs';

main(async ({ base, clientId, clientSecret }) => {
  const client = new Client({ baseUrl: base });
  const { tokenUrl } = await client.smartAuthMetadata();
  const endpoint = new URL(tokenUrl);
  const oauth = new ClientCredentials({
    client: { id: clientId, secret: clientSecret },
    auth: { tokenHost: endpoint.origin, tokenPath: endpoint.pathname },
  });
  const { token } = await oauth.getToken({
    scope: 'system/Patient.cruds system/RelatedPerson.cruds',
  });
  client.bearerToken = token.access_token;
  return {
    scope: token.scope,
    create: (body) => client.create({ resourceType: body.resourceType, body }),
    read: (resourceType, id) => client.read({ resourceType, id }),
    update: (body) => client.update({ resourceType: body.resourceType, id: body.id, body }),
    remove: (resourceType, id) => client.delete({ resourceType, id }),
    searchPages: async (resourceType, searchParams) => {
      const pages = [];
      let page = await client.search({ resourceType, searchParams });
      while (page) {
        pages.push((page.entry ?? []).map((e) => e.resource));
        page = await client.nextPage({ bundle: page });
      }
      return pages;
    },
    transaction: (body) => client.transaction({ body }),
    batch: (body) => client.batch({ body }),
    readStatus: async (resourceType, id) => {
      try {
        await client.read({ resourceType, id });
        return 200;
      } catch (error) {
        return error.response.status;
      }
    },
  };
});
