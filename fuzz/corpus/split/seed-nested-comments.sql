SELECT 1 /* outer /* inner; */ still; */ ; SELECT /*/ odd */ 2;
/* a */ /* b /* c /* d */ */ */ SELECT 3