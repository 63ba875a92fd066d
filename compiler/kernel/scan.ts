/** Scan form (placeholder registration until the structure analysis lands). */
export {};
