export { createCa, issueCertificate, createCsr, issueForCsr, uriSans, parseSubjectAltName, type PemPair, type LeafRequest, type CertUsage } from './ca.js';
export { LocalPki, type CertFiles } from './local.js';
export { spiffeId, parseSpiffeId, DEFAULT_TRUST_DOMAIN, type WorkloadIdentity } from './identity.js';
export { meshServerCredentials, meshClientCredentials, verifiedPeer, type TlsFiles, type PeerCheck } from './grpc.js';
