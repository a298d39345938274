/* Placeholder until this stage is written; it defines nothing yet. */
typedef int placeholder_unit;
