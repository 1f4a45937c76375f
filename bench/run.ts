// `npm run bench`: every benchmark, one after the other.
import './quick-build';
