// graphql-codegen: TypeScript types for kith's schema and for this example's
// operations (the `graphql()` calls in src/), written to src/gql/.
//
// The schema is the committed ../../schema.graphql, which a kith test keeps
// equal to what the server serves, so `npm run codegen` works offline. Set
// KITH_SCHEMA_URL (e.g. http://127.0.0.1:8080/graphql) to introspect a
// running server instead.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: process.env.KITH_SCHEMA_URL || '../../schema.graphql',
  documents: ['src/**/*.ts', '!src/gql/**'],
  ignoreNoDocuments: false,
  emitLegacyCommonJSImports: false,
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        // kith's custom scalars travel as strings in JSON.
        scalars: { DateTime: 'string', Date: 'string' },
      },
    },
  },
};

export default config;
