// A real OpenID provider for the test suite: oidc-provider (OpenID Certified) issuing JWT
// access tokens to client_credentials clients, for the audience the service accepts.
// Usage: node server.mjs PORT AUDIENCE   (prints "ready ISSUER" once listening)
import Provider from 'oidc-provider';

const [port, audience] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const scopes = [
  'system/*.rs', 'system/CareTeam.rs', 'system/CareTeam.cruds', 'patient/*.rs',
  'patient/CareTeam.rs', 'system/Patient.rs',
];

// Clients: a backend service, and an app confined to one patient (the `patient` claim).
const clients = [
  { client_id: 'backend-service', client_secret: 'backend-service-secret', patient: null },
  { client_id: 'patient-app', client_secret: 'patient-app-secret', patient: 'idp-patient' },
];

const provider = new Provider(issuer, {
  clients: clients.map(({ client_id, client_secret }) => ({
    client_id,
    client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: scopes.join(' '),
  })),
  scopes,
  ttl: { ClientCredentials: 300 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: scopes.join(' '),
        audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 300,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => {
    const client = clients.find((c) => c.client_id === token.clientId);
    return client && client.patient ? { patient: client.patient } : undefined;
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
